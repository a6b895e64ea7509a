"""sedtk.score."""
