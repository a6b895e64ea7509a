"""sedtk.train."""
