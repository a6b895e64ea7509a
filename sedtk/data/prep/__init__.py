"""sedtk.data.prep."""
