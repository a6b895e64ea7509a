"""Export a data dir as JSON lines, one record per utterance."""

from __future__ import annotations

import json
from dataclasses import asdict

from sedtk.data.datadir import DataDir


def to_jsonl_lines(dd: DataDir) -> list[str]:
    """One JSON object per utterance with every field present (absent fields are omitted)."""
    lines = []
    for utt in dd:
        rec = {k: v for k, v in asdict(utt).items() if v is not None}
        lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
    return lines
