"""``sedtk data synth|describe`` (filled by the synthetic corpus work)."""
