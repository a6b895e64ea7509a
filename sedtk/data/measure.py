"""Acoustic measurements of one utterance with openSMILE's eGeMAPS v02 set (the field's standard).

eGeMAPS (the extended Geneva Minimalistic Acoustic Parameter Set, Eyben et al., "The Geneva
Minimalistic Acoustic Parameter Set (GeMAPS) for Voice Research and Affective Computing", IEEE
Trans. Affective Computing 7(2), 2016) is computed by the ``opensmile`` package, whose SMILE binary
ships in the wheel and runs offline.  :func:`measure` runs its *functionals* once per utterance and
keeps the values that speech descriptors are about; ``sedtk data describe`` (pseudo-labels) and
:mod:`sedtk.explain.evidence` (checking generated descriptions) both read them, so a label and its
check use the same numbers.

==========================  ===========================================  ==========================
field                       eGeMAPS functional (or how it is derived)    unit
==========================  ===========================================  ==========================
``f0_mean_st``              ``F0semitoneFrom27.5Hz_sma3nz_amean``        semitones re 27.5 Hz
``f0_range_st``             ``F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2``  semitones (20th-80th pct)
``loudness``                ``loudness_sma3_amean``                      sone (Zwicker-style)
``level_db``                ``equivalentSoundLevel_dBp`` + 10 log10(      dBFS of the active span
                            duration / ``speech_s``)
``rate``                    ``loudnessPeaksPerSec``                      loudness peaks per second
                                                                         (syllable-rate proxy)
``voiced_segments_per_s``   ``VoicedSegmentsPerSec``                     1/s
``voiced_frac``             ``VoicedSegmentsPerSec`` x                   share of the duration
                            ``MeanVoicedSegmentLengthSec``
``jitter``                  ``jitterLocal_sma3nz_amean``                 ratio (period to period)
``shimmer_db``              ``shimmerLocaldB_sma3nz_amean``              dB
``hnr_db``                  ``HNRdBACF_sma3nz_amean``                    dB
``duration_s``              samples / sample rate                        s
``speech_s``                first to last frame within 40 dB of the      s
                            loudest (25 ms frames, 10 ms hop)
==========================  ===========================================  ==========================

eGeMAPS reports 0 for the voiced-only (``sma3nz``) functionals of audio without a voiced frame;
here those are NaN and :attr:`Measurement.voiced` is False (so is ``rate``: loudness peaks of noise
are not syllables).  Segments too short for openSMILE's windows (under about 0.1 s) measure NaN
everywhere.  Audio of any sample rate is accepted (openSMILE resamples internally as needed);
sedtk passes 16 kHz mono from :func:`sedtk.data.audio.load_utterance`.

The choice of ``level_db`` (not the whole-file equivalent level) and of the 20-80 percentile range
was measured on the synthetic corpus against its true settings (``bench/bench_describe.py``).
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import asdict, dataclass

import numpy as np

#: F0 in eGeMAPS is in semitones relative to this frequency.
F0_REF_HZ = 27.5
ACTIVE_DB = 40.0  # frames within this many dB of the loudest are "active"
_local = threading.local()


@dataclass
class Measurement:
    """eGeMAPS-derived measurements of one utterance (NaN where undefined; see the module table)."""

    duration_s: float
    speech_s: float
    voiced_frac: float
    f0_mean_st: float
    f0_range_st: float
    loudness: float
    level_db: float
    rate: float
    voiced_segments_per_s: float
    jitter: float
    shimmer_db: float
    hnr_db: float

    @property
    def voiced(self) -> bool:
        """Whether any voiced speech was found (a pitch was measured)."""
        return math.isfinite(self.f0_mean_st)

    @property
    def f0_hz(self) -> float:
        """The mean F0 in semitones, converted back to Hz (NaN when unvoiced)."""
        return F0_REF_HZ * 2 ** (self.f0_mean_st / 12) if self.voiced else math.nan

    def to_dict(self) -> dict[str, float | bool | None]:
        """JSON-ready: NaN -> None, rounded, plus ``voiced`` and ``f0_hz``."""
        d: dict[str, float | bool | None] = {}
        for k, v in {**asdict(self), "f0_hz": self.f0_hz}.items():
            d[k] = round(float(v), 4) if math.isfinite(v) else None
        d["voiced"] = self.voiced
        return d


def _smile():
    """One openSMILE extractor per thread (an extractor is not shared across threads)."""
    s = getattr(_local, "smile", None)
    if s is None:
        try:
            import opensmile
        except ImportError as e:  # pragma: no cover - a declared dependency
            msg = "sedtk's acoustic measurements need the 'opensmile' package: pip install opensmile"
            raise ImportError(msg) from e
        s = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02,
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        _local.smile = s
    return s


def _speech_span(x: np.ndarray, sample_rate: int) -> float:
    """Seconds from the first to the last 25 ms frame within :data:`ACTIVE_DB` of the loudest."""
    hop, win = max(1, sample_rate // 100), max(1, sample_rate // 40)
    if len(x) < win:
        return len(x) / sample_rate
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]  # (F, win)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)  # (F,)
    idx = np.flatnonzero((db > db.max() - ACTIVE_DB) & (db > -100.0))
    if len(idx) == 0:
        return 0.0
    return min(len(x) / sample_rate, ((idx[-1] - idx[0]) * hop + win) / sample_rate)


def _nz(v: float) -> float:
    """eGeMAPS' voiced-only functionals are 0 without voiced frames: NaN instead."""
    return v if math.isfinite(v) and v != 0.0 else math.nan


def measure(wav, sample_rate: int) -> Measurement:
    """Measure one mono waveform (numpy array or 1-D tensor, float in [-1, 1])."""
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    if not np.isfinite(x).all():
        raise ValueError("measure: the waveform has NaN or infinite samples")
    duration = len(x) / sample_rate
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Segment too short")
        f = _smile().process_signal(x, sample_rate).iloc[0]
    g = {k: float(v) for k, v in f.items()}
    speech = _speech_span(x, sample_rate)
    voiced = g["VoicedSegmentsPerSec"] > 0 and g["F0semitoneFrom27.5Hz_sma3nz_amean"] > 0
    level = g["equivalentSoundLevel_dBp"]
    if math.isfinite(level) and speech > 0 and level > -119.0:
        level += 10 * math.log10(duration / speech)  # energy of the whole file, spread over the active span
    elif math.isfinite(level):
        level = -120.0
    seg = g["VoicedSegmentsPerSec"]
    return Measurement(
        duration_s=duration,
        speech_s=speech,
        voiced_frac=min(1.0, seg * g["MeanVoicedSegmentLengthSec"]) if math.isfinite(seg) else math.nan,
        f0_mean_st=_nz(g["F0semitoneFrom27.5Hz_sma3nz_amean"]) if voiced else math.nan,
        f0_range_st=g["F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2"] if voiced else math.nan,
        loudness=g["loudness_sma3_amean"],
        level_db=level,
        rate=g["loudnessPeaksPerSec"] if voiced else math.nan,
        voiced_segments_per_s=seg,
        jitter=_nz(g["jitterLocal_sma3nz_amean"]) if voiced else math.nan,
        shimmer_db=_nz(g["shimmerLocaldB_sma3nz_amean"]) if voiced else math.nan,
        hnr_db=g["HNRdBACF_sma3nz_amean"] if voiced else math.nan,
    )


#: Field names in cache order (``descriptor_feats.tsv``).
FIELDS = tuple(Measurement.__dataclass_fields__)


# ----------------------------------------------------------------------------- a data dir, cached

#: The cache of a data dir's measurements (written by ``sedtk data describe``, reused by evidence).
FEATS_FILE = "descriptor_feats.tsv"
#: Bumped when the measurements change (a cache written by another version is ignored).
FEATS_VERSION = 2


def _cache_header() -> str:
    return f"# sedtk describe features v{FEATS_VERSION} egemaps-v02\tutt\taudio\t" + "\t".join(FIELDS)


def read_cache(path) -> dict[str, tuple[str, Measurement]]:
    """Rows of a ``descriptor_feats.tsv`` of this version: key -> (audio spec, measurement)."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != _cache_header():
        return {}
    out = {}
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) != len(FIELDS) + 2:
            continue
        try:
            out[parts[0]] = (parts[1], Measurement(*(float(p) for p in parts[2:])))
        except ValueError:
            continue  # a torn line: measured again
    return out


def write_cache(path, rows: dict[str, tuple[str, Measurement]]) -> None:
    from sedtk.data.datadir import atomic_write_text

    body = [_cache_header()]
    for k in sorted(rows):
        spec, m = rows[k]
        body.append("\t".join([k, spec, *(f"{getattr(m, n):.5g}" for n in FIELDS)]))
    atomic_write_text(path, "\n".join(body) + "\n")


def audio_spec(utt) -> str:
    """What identifies an utterance's audio in the cache (path and segment times)."""
    start = utt.start if utt.start is not None else ""
    end = utt.end if utt.end is not None else ""
    return f"{utt.wav}:{start}:{end}"


def measure_datadir(data, cache=None, nj: int = 1, chunk: int = 500, log=None) -> dict[str, Measurement]:
    """Measure every utterance of the :class:`~sedtk.data.datadir.DataDir` ``data`` with ``nj`` threads.

    With ``cache`` (a ``descriptor_feats.tsv`` path) utterances whose audio spec matches a cached
    row are not measured again, and the cache is rewritten after every ``chunk`` utterances, so an
    interrupted run resumes where it stopped.  A cache of ``cache`` that cannot be written (a
    read-only data dir) is only read.
    """
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from sedtk.data.audio import SAMPLE_RATE, load_utterance

    rows = read_cache(cache) if cache is not None else {}
    utts = list(data)
    feats: dict[str, tuple[str, Measurement]] = {}
    todo = []
    for u in utts:
        hit = rows.get(u.key)
        if hit is not None and hit[0] == audio_spec(u):
            feats[u.key] = hit
        else:
            todo.append(u)
    if log is not None:
        log.info("measure: %d utterances, %d cached", len(utts), len(utts) - len(todo))

    def work(u) -> tuple[str, tuple[str, Measurement]]:
        wav = load_utterance(u).numpy()  # an unreadable file raises AudioError naming it
        return u.key, (audio_spec(u), measure(wav, SAMPLE_RATE))

    writable = cache is not None
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for start in range(0, len(todo), chunk):
            feats.update(pool.map(work, todo[start : start + chunk]))
            if writable:
                try:
                    Path(cache).parent.mkdir(parents=True, exist_ok=True)
                    write_cache(cache, feats)
                except OSError as e:
                    writable = False
                    if log is not None:
                        log.warning("measure: cannot write the cache %s (%s); measuring without it", cache, e)
    return {k: v[1] for k, v in feats.items()}
