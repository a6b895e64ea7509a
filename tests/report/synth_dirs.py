"""Small synthetic inputs of ``sedtk report``, written with the writers the real commands use.

``make_inputs(root, n)`` writes a data dir (sine-tone wavs), a decode dir (``ResultsWriter`` +
``write_kaldi_outputs`` + ``summarize``, as ``sedtk decode`` does), an ``evidence.jsonl`` of claims,
an explain dir (``explain.json`` + ``layer_weights.tsv`` as ``sedtk explain`` writes them) and a
timeline JSON of a generated recording.  Used by tests/report and bench/bench_report.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from sedtk.data.audio import save_wav
from sedtk.data.datadir import DataDir, format_attr
from sedtk.decode.outputs import ResultsWriter, UttResult, summarize, write_kaldi_outputs
from sedtk.utils.io import write_json

EMOTIONS = ["neutral", "happy", "sad", "angry"]
#: Untrusted text that must come out as text, never as markup.
NASTY = (
    "</script><script>document.documentElement.dataset.pwned='script'</script>"
    "<img src=x onerror=\"document.documentElement.dataset.pwned='img'\"> & <b>bold</b> \u2028"
)
WORDS = "the quick brown fox jumps over a lazy dog while rain falls on quiet streets tonight".split()


def _tone(seconds: float, f0: float, amp: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * f0 * t) * np.hanning(len(t))).astype("float32")


def make_inputs(
    root: Path, n: int = 12, seed: int = 0, audio: bool = True, nasty: bool = True
) -> dict[str, Path]:
    rng = random.Random(seed)
    root = Path(root)
    data, dec, ex = root / "data", root / "decode", root / "explain"
    wavs = root / "wavs"
    maps: dict[str, dict[str, str]] = {
        k: {} for k in ("wav.scp", "text", "utt2spk", "utt2emo", "utt2desc", "utt2attr")
    }
    results: dict[str, UttResult] = {}
    evidence = []
    for i in range(n):
        key = f"spk{i % 3}_utt{i:05d}"
        pitch, volume, speed = (
            rng.choice(["low", "normal", "high"]),
            rng.choice(["low", "normal", "high"]),
            rng.choice(["slow", "normal", "fast"]),
        )
        gender = "female" if i % 2 else "male"
        ref_e = EMOTIONS[i % 4]
        dur = round(rng.uniform(1.0, 2.0), 2)
        if audio:
            save_wav(wavs / f"{key}.wav", _tone(dur, 120 + 40 * (i % 5), 0.3))
            maps["wav.scp"][key] = str(wavs / f"{key}.wav")
        else:
            maps["wav.scp"][key] = f"/nonexistent/{key}.wav"
        text = " ".join(rng.choice(WORDS) for _ in range(6))
        maps["text"][key] = text
        maps["utt2spk"][key] = f"spk{i % 3}"
        maps["utt2emo"][key] = ref_e
        maps["utt2desc"][key] = (
            f"A {gender} speaker with {pitch} pitch and {volume} volume speaks at a {speed} pace."
        )
        maps["utt2attr"][key] = format_attr(
            {"gender": gender, "pitch": pitch, "volume": volume, "speed": speed}
        )
        hyp_pitch = pitch if rng.random() < 0.7 else rng.choice(["low", "high"])
        desc = (
            f"A {gender} speaker, {hyp_pitch} pitch and {volume} volume, at a {speed} pace, sounding {ref_e}."
        )
        hyp_text = text if i % 4 else " ".join(text.split()[:-1])
        if nasty and i == 1:
            hyp_text = NASTY
            desc = NASTY.replace("\u2028", "") + " high pitch"  # (a Kaldi map value cannot hold U+2028)
        raw = [rng.random() + (3 if j == i % 4 else 0) * (i % 3 != 0) for j in range(4)]
        post = {e: r / sum(raw) for e, r in zip(EMOTIONS, raw, strict=True)}
        hyp_e = max(post, key=post.get)
        if i == n - 1 and n > 3:
            results[key] = UttResult(
                key=key, error=f"{maps['wav.scp'][key]}: unreadable or corrupt audio (test)"
            )
            continue
        results[key] = UttResult(
            key=key,
            transcript=hyp_text,
            description=desc,
            emotion=hyp_e,
            emotion_parsed=hyp_e,
            emotion_scored=hyp_e,
            posterior=post,
            parse_failed=False,
            seconds={"asr": 0.1, "ser_sed": 0.2},
            duration=dur,
        )
        claims = [
            _claim(
                desc,
                f"{hyp_pitch} pitch",
                "pitch",
                hyp_pitch,
                "supported" if hyp_pitch == pitch else "contradicted",
                measured=80.0 + 4 * i,
                unit="st",
                bin=pitch,
            ),
            _claim(
                desc, f"{volume} volume", "volume", volume, "supported", measured=-23.5, unit="dB", bin=volume
            ),
            _claim(
                desc, f"a {speed} pace", "speed", speed, "not checkable", reason="too few voiced segments"
            ),
        ]
        evidence.append(
            {
                "key": key,
                "description": desc,
                "voiced": True,
                "reference": f"speaker spk{i % 3}",
                "claims": [c for c in claims if c],
            }
        )
    DataDir(maps={k: v for k, v in maps.items() if v}, emotions=list(EMOTIONS)).save(data)
    with ResultsWriter(dec / "results.jsonl") as w:
        w.write(results[k] for k in sorted(results))
    write_kaldi_outputs(dec, results, EMOTIONS)
    summary = summarize(results, sorted(results), ["asr", "ser_sed"], "scoring")
    write_json(dec / "decode_summary.json", summary)
    write_json(
        dec / "decode_config.json",
        {"data": str(data.resolve()), "inventory": EMOTIONS, "tasks": ["asr", "ser_sed"]},
    )
    (dec / "evidence.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evidence), encoding="utf-8")

    ex.mkdir(parents=True, exist_ok=True)
    lw = {
        "content": {str(i): w for i, w in enumerate(_softmax([0.1 * i for i in range(25)]))},
        "descriptor": {str(i): w for i, w in enumerate(_softmax([1.5 - 0.12 * i for i in range(25)]))},
    }
    (ex / "explain.json").write_text(
        json.dumps(
            {
                "checkpoint": "exp/sys7_stage2/best_ua",
                "feature_disentanglement": True,
                "layer_weights": lw,
                "latent": {
                    "content": {
                        "dim": 64,
                        "frames": 900,
                        "utterances": n,
                        "active_units": 40,
                        "total_mean_kl": 3.2,
                    },
                    "descriptor": {
                        "dim": 64,
                        "frames": 900,
                        "utterances": n,
                        "active_units": 12,
                        "total_mean_kl": 0.9,
                    },
                },
                "emotion": {"utterances": n, "correct": n // 2, "accuracy": 0.5},
                "attributes": {
                    "pitch": {"agree": 5, "disagree": 2, "silent": 1, "agreement_when_mentioned": 5 / 7}
                },
                "grounding": {
                    "utterances": n,
                    "unvoiced_utterances": 1,
                    "attributes": {
                        "pitch": {
                            "supported": 3,
                            "contradicted": 1,
                            "not checkable": 0,
                            "grounding_rate": 0.75,
                        }
                    },
                    "examples": [],
                },
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    (ex / "layer_weights.tsv").write_text(
        "hidden_state\tcontent\tdescriptor\n"
        + "".join(f"{i}\t{lw['content'][str(i)]:.6f}\t{lw['descriptor'][str(i)]:.6f}\n" for i in range(25)),
        encoding="utf-8",
    )

    # a 60 s "recording" and its timeline
    rec = root / "long.wav"
    segs, t = [], 0.5
    while t < 58:
        d = rng.uniform(2.0, 6.0)
        e = rng.choice(EMOTIONS)
        segs.append(
            {
                "start": round(t, 2),
                "end": round(min(t + d, 59.5), 2),
                "transcript": " ".join(rng.choice(WORDS) for _ in range(5)),
                "description": f"high pitch, sounding {e}",
                "emotion": e,
                "posterior": {x: (0.7 if x == e else 0.1) for x in EMOTIONS},
                "evidence": {
                    "voiced": True,
                    "claims": [
                        _claim(f"high pitch, sounding {e}", "high pitch", "pitch", "high", "supported")
                    ],
                },
            }
        )
        t += d + rng.uniform(0.3, 1.0)
    if audio:
        save_wav(rec, _tone(60.0, 150, 0.2))
    tl = root / "timeline.json"
    for i, sg in enumerate(segs):
        sg.update(
            index=i,
            key=f"long_{int(sg['start'] * 100):07d}_{int(sg['end'] * 100):07d}",
            duration=round(sg["end"] - sg["start"], 3),
        )
    segs[3] = {k: segs[3][k] for k in ("index", "key", "start", "end", "duration")} | {
        "error": "test failure"
    }
    record = {
        "schema": "sedtk.timeline/1",
        "file": str(rec),
        "duration": 60.0,
        "inventory": EMOTIONS,
        "segments": segs,
        "summary": {
            "segments": len(segs),
            "decoded": len(segs) - 1,
            "failed": 1,
            "coverage": 0.8,
            "dominant_emotion": "happy",
        },
    }
    tl.write_text(json.dumps(record), encoding="utf-8")
    return {"root": root, "data": data, "decode": dec, "explain": ex, "timeline": tl}


def _claim(desc: str, phrase: str, attribute: str, value: str, verdict: str, **kw) -> dict | None:
    """A claim as :mod:`sedtk.data.evidence` writes it (None when ``phrase`` is not in ``desc``)."""
    i = desc.find(phrase)
    if i < 0:
        return None
    rec = {
        "claim": phrase,
        "attribute": attribute,
        "value": value,
        "negated": False,
        "start": i,
        "end": i + len(phrase),
        "measured": None,
        "unit": None,
        "bin": None,
        "normal": None,
    }
    rec.update(kw)
    return {**rec, "verdict": verdict, "reason": kw.get("reason", f"{verdict} (synthetic)")}


def _softmax(x: list[float]) -> list[float]:
    e = np.exp(np.asarray(x) - max(x))
    return (e / e.sum()).tolist()
