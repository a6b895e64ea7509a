"""``sedtk data prep|synth|describe`` (filled by the corpus preparation work)."""
