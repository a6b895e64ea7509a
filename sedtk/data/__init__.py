"""Data dirs, audio, corpus preparation and descriptor pseudo-labels."""
