"""The world the bad-input cases break: one small data dir with its own audio, a finished decode of
it, its feature dump and a finished one-step training run, built once per session (about 20 s on
top of the shared tiny models) by the library calls the CLI makes.  Every case copies what it
changes into its own folder, so the originals stay the "earlier results" each case checks."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.decode.conftest import MAX_NEW_TOKENS, one_torch_thread, tiny_checkpoint  # noqa: F401
from tests.models.test_sed_model import Assets, shared_assets

#: Decoding options of every decode case (a random LLM never stops by itself).
FAST = ["--max-new-tokens", str(MAX_NEW_TOKENS), "--device", "cpu", "--batch-size", "4"]


@dataclass(frozen=True)
class World:
    root: Path
    assets: Assets
    model: Path  # a decode experiment dir (tiny stage-2 checkpoint best_ua)
    data: Path  # 4 utterances, wavs copied into root/wav (absolute paths)
    decoded: Path  # sedtk decode --data data --out decoded, finished
    dump: Path  # sedtk feats dump data dump, finished
    trained: Path  # sedtk train (stage 1, one step) on data with dump, finished

    def copy(self, name: str, dst: Path) -> Path:
        """A copy of one of the world's folders (to break it) -- wav.scp still names the world's audio."""
        return Path(shutil.copytree(getattr(self, name), dst / name, symlinks=True))

    def data_copy(self, dst: Path) -> Path:
        """A copy of the data dir *with its own audio* (to change the audio)."""
        from sedtk.data.datadir import DataDir

        d = DataDir.load(self.data)
        (dst / "wav").mkdir(parents=True)
        for k, v in d.maps["wav.scp"].items():
            shutil.copy2(v, dst / "wav" / f"{k}.wav")
            d.maps["wav.scp"][k] = str(dst / "wav" / f"{k}.wav")
        return d.save(dst / "data")


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` with the hash of its bytes (what "intact" compares)."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha1(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    import torch

    from sedtk.data.datadir import DataDir
    from sedtk.decode.decoder import DecodeOptions
    from sedtk.decode.run import decode_data_dir
    from sedtk.features.dump import dump_features
    from sedtk.train.trainer import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assets = shared_assets()
        root = tmp_path_factory.mktemp("world")
        src = DataDir.load(assets.subset("robust", 4))
        (root / "wav").mkdir()
        for k, v in src.maps["wav.scp"].items():
            shutil.copy2(v, root / "wav" / f"{k}.wav")
            src.maps["wav.scp"][k] = str(root / "wav" / f"{k}.wav")
        data = src.save(root / "data")
        model = tiny_checkpoint()
        opts = DecodeOptions(max_new_tokens=MAX_NEW_TOKENS, batch_size=4, device="cpu")
        decode_data_dir(model, data, root / "decoded", opts, log=lambda _m: None)
        dump_features(data, root / "dump", str(assets.upstream), progress=False, check_disk=False)
        train("paper/sys7_stage1", data, root / "trained", feats_train=root / "dump", console=False,
              overrides=assets.overrides("train.max_steps=1", "train.epochs=1"))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return World(root, assets, model, data, root / "decoded", root / "dump", root / "trained")
