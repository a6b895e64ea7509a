"""sedtk.features."""
