"""sedtk.decode."""
