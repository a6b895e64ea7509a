"""The decode sources: the typed ``Source`` interface and their cheap (header-only) durations."""

import numpy as np
import soundfile as sf
import torch

from sedtk.data.datadir import DataDir
from sedtk.data.segment import Segment
from sedtk.decode.sources import AudioSource, FeatureSource, FileSource, SegmentSource, Source


def test_every_source_has_the_interface_decode_keys_reads():
    assert isinstance(AudioSource(DataDir(), 30.0), Source)
    assert isinstance(FileSource(30.0), Source)
    assert isinstance(SegmentSource({}), Source)
    for name in ("duration", "load", "batch", "seconds"):
        assert callable(getattr(FeatureSource, name))


def test_durations_come_from_utt2dur_segments_or_the_header_and_unknown_is_none(tmp_path):
    sf.write(str(tmp_path / "a.wav"), np.zeros(24000, dtype=np.float32), 16000)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "wav.scp").write_text(f"a {tmp_path / 'a.wav'}\nb {tmp_path / 'gone.wav'}\n")
    (tmp_path / "d" / "segments").write_text("u1 a 0.5 1.25\n")
    data = DataDir.load(tmp_path / "d")
    src = AudioSource(data, 30.0)
    assert src.duration("u1") == 0.75
    files = FileSource(30.0)
    assert files.duration(str(tmp_path / "a.wav")) == 1.5
    assert files.duration(str(tmp_path / "gone.wav")) is None  # the load reports why
    seg = SegmentSource({"s": Segment(16000, 40000, np.zeros(24000, dtype=np.float32))})
    assert seg.duration("s") == 1.5
    assert seg.seconds(seg.load("s")) == 1.5 and isinstance(seg.load("s"), torch.Tensor)
