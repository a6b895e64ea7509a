"""sedtk.models."""
