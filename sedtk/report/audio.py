"""Audio of the report's players: embedded as base64 ``data:`` URIs, or linked by relative path.

``--audio`` modes:

- ``embed``: every utterance is read with the toolkit's loader (segments cut, 16 kHz mono) and
  encoded into the page (``opus``: Ogg/Opus, about 3 kB per second of speech; ``flac``: lossless,
  about 25 kB/s; ``wav``: 16-bit PCM, 32 kB/s).  The page then plays anywhere on its own.
- ``link``: the players point at the audio files by a path relative to the report (a Kaldi
  ``segments`` entry becomes a ``#t=start,end`` media fragment), so the page stays small but must be
  opened next to the audio (same relative location).
- ``none``: no players.
- ``auto`` (default): ``embed`` up to :data:`AUTO_EMBED_MAX` utterances, else ``link``; a timeline's
  recording is embedded up to :data:`AUTO_EMBED_SECONDS` long, else linked.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from urllib.parse import quote

from sedtk.errors import OptionError

MODES = ("auto", "embed", "link", "none")
CODECS = {
    "opus": ("OGG", "OPUS", "audio/ogg"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "wav": ("WAV", "PCM_16", "audio/wav"),
}
#: ``--audio auto`` embeds at most this many utterances (about 1.5 MB of Opus for 3 s each).
AUTO_EMBED_MAX = 200
#: ``--audio auto`` embeds a timeline's recording up to this length (20 min of Opus: about 6 MB).
AUTO_EMBED_SECONDS = 1200.0
#: Extensions Chromium/Firefox play in an <audio> element (a linked file of another kind gets no player).
PLAYABLE = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm", ".mp4", ".oga"}


def resolve_mode(mode: str, n_utts: int) -> str:
    if mode not in MODES:
        raise OptionError(f"--audio must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        return "embed" if n_utts <= AUTO_EMBED_MAX else "link"
    return mode


def encode(wav, codec: str = "opus", sample_rate: int = 16000) -> str:
    """A ``data:`` URI of a mono waveform (tensor or array) in ``codec``."""
    import numpy as np
    import soundfile as sf

    if codec not in CODECS:
        raise OptionError(f"--audio-codec must be one of {', '.join(CODECS)}, got {codec!r}")
    fmt, subtype, mime = CODECS[codec]
    arr = wav.detach().cpu().numpy() if hasattr(wav, "detach") else np.asarray(wav, dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, np.clip(arr, -1.0, 1.0), sample_rate, format=fmt, subtype=subtype)
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def embed(path: str, start: float | None, end: float | None, codec: str) -> str:
    """Read (any format the loader reads; the segment only) and encode as a ``data:`` URI."""
    from sedtk.data.audio import load_audio

    return encode(load_audio(path, start, end, max_duration=None), codec)


def link(path: str, start: float | None, end: float | None, out_dir: Path) -> str | None:
    """A URL relative to ``out_dir`` (percent-encoded: no scheme can be smuggled in), or None when
    a browser cannot play the file's format."""
    if Path(path).suffix.lower() not in PLAYABLE:
        return None
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))
    url = quote(rel.replace(os.sep, "/"), safe="/")
    if not url.startswith(("/", ".")):
        url = "./" + url
    if start is not None:
        url += f"#t={start:.3f}" + (f",{end:.3f}" if end is not None else "")
    return url
