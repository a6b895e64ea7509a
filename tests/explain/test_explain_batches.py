"""explain's latent statistics come from decode's load-and-batch loop: skips, dumps, batch sizes."""

from __future__ import annotations

import logging

import pytest

from tests.decode.conftest import one_torch_thread, tiny_checkpoint  # noqa: F401 (autouse fixture)
from tests.models.test_sed_model import shared_assets


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_unreadable_utterance_is_skipped_and_logged_and_batches_do_not_change_the_numbers(tmp_path):
    from sedtk.explain.run import explain

    exp, assets = tiny_checkpoint(), shared_assets()
    data = tmp_path / "data"
    src = assets.subset("explain_batches", 5)
    data.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (data / f.name).write_bytes(f.read_bytes())
    scp = (data / "wav.scp").read_text().splitlines()
    bad = scp[0].split()[0]
    scp[0] = f"{bad} {tmp_path}/missing.wav"
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "utt2dur").unlink(missing_ok=True)

    records = _Records()
    logger = logging.getLogger("sedtk.explain.run")
    logger.addHandler(records)
    try:
        one = explain(exp, tmp_path / "bs1", data=data, device="cpu", batch_size=1)
    finally:
        logger.removeHandler(records)
    assert one["latent_skipped"] == 1
    assert all(s["utterances"] == 4 for s in one["latent"].values())
    warned = [r.getMessage() for r in records.records if r.levelno == logging.WARNING]
    assert warned[0].startswith("skipped: ") and bad in warned[0]
    assert warned[-1] == "skipped 1 utterance(s) that could not be read"

    three = explain(exp, tmp_path / "bs3", data=data, device="cpu", batch_size=3, log=lambda *_: None)
    for b, s in one["latent"].items():  # padding is masked: the batch size changes nothing
        assert three["latent"][b]["frames"] == s["frames"]
        assert three["latent"][b]["total_mean_kl"] == pytest.approx(s["total_mean_kl"], rel=1e-4)

    dumped = explain(exp, tmp_path / "dump", data=data, feats=assets.dump, device="cpu", log=lambda *_: None)
    assert dumped["latent_skipped"] == 0  # the dump holds every utterance, whatever wav.scp says
    assert all(s["utterances"] == 5 for s in dumped["latent"].values())
