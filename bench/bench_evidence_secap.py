"""The human annotators' claims on real speech: SECap's 40 test wavs with their Chinese captions.

    python bench/bench_evidence_secap.py [SECAP_DIR] [--work DIR] [--calibration FILE]

``SECAP_DIR`` (default ``../shared/corpora/secap_test``) is prepared with ``sedtk data prep emosec``;
every caption's claims (parsed by :mod:`sedtk.data.attributes`) are checked against its wav twice:
as a data dir (the 40 utterances' own statistics; no speaker ids, so grouped by the gender their F0
suggests, the transcript's syllables for the pace) and file by file against population norms.
Printed: per attribute, how many claims are supported, contradicted, uncertain or not checkable,
and every contradicted claim with its measurement, band and reason (JSON lines, then a Markdown
table).  There is no truth here: each contradicted claim is for a person to judge (the caption or
the measurement wrong?).
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

VERDICTS = ("supported", "contradicted", "uncertain", "not checkable")
ATTRS = ("gender", "pitch", "volume", "speed", "pitch_range")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("secap", type=Path, nargs="?", default=here.parent / "shared" / "corpora" / "secap_test")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--calibration", type=Path, default=None)
    args = ap.parse_args()

    from sedtk.data.datadir import DataDir
    from sedtk.data.evidence import data_evidence, evidence_for_file
    from sedtk.data.prep import prepare_corpus

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if not (work / "data" / "test" / "wav.scp").exists():
            prepare_corpus("emosec", args.secap, work / "data", nj=2)
        data = DataDir.load(work / "data" / "test")
        caps = {k: data.get("utt2desc", k) for k in data.utts}
        tables = {}
        runs = {
            "data dir": data_evidence(data, caps, calibration=args.calibration),
            "population norms": {
                k: evidence_for_file(
                    data.utterance(k).wav,
                    caps[k],
                    transcript=data.get("text", k),
                    calibration=args.calibration,
                )
                for k in data.utts
            },  # fmt: skip
        }
        for name, ev in runs.items():
            counts = {a: collections.Counter() for a in ATTRS}
            for k, r in sorted(ev.items()):
                for c in r["claims"]:
                    if c["attribute"] not in counts:
                        continue
                    counts[c["attribute"]][c["verdict"]] += 1
                    if c["verdict"] == "contradicted":
                        rec = {
                            "reference": name,
                            "key": k,
                            "caption": caps[k],
                            "transcript": data.get("text", k),
                            "syllables": r.get("syllables"),
                            "speech_s": r["measurements"].get("vad_speech_s"),
                        }
                        rec |= {
                            f: c[f]
                            for f in ("claim", "attribute", "value", "measured", "unit", "normal", "reason")
                        }
                        print(json.dumps(rec, ensure_ascii=False))  # fmt: skip
            tables[name] = counts
        print()
        for name, counts in tables.items():
            print(f"#### {name} ({len(data)} wavs)\n")
            print("| attribute | claims | " + " | ".join(VERDICTS) + " |")
            print("|---|---:|" + "---:|" * len(VERDICTS))
            for a, c in counts.items():
                if sum(c.values()):
                    print(f"| {a} | {sum(c.values())} | " + " | ".join(str(c[v]) for v in VERDICTS) + " |")
            print()


if __name__ == "__main__":
    main()
