import json
import os

import pytest

from sedtk.utils.io import atomic_write_text, current_umask, respect_umask, write_json


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_current_umask_reads_the_umask_without_changing_it(umask_027):
    assert current_umask() == 0o027
    assert current_umask() == 0o027  # reading did not reset it
    os.umask(0o002)
    assert current_umask() == 0o002  # follows a umask set after import


def test_atomic_write_gives_the_mode_a_plain_open_gives(tmp_path, umask_027):
    atomic_write_text(tmp_path / "sub" / "f.txt", "é\n")
    with open(tmp_path / "plain", "w") as f:
        f.write("x")
    mode = (tmp_path / "sub" / "f.txt").stat().st_mode & 0o777
    assert mode == 0o640 == (tmp_path / "plain").stat().st_mode & 0o777
    assert (tmp_path / "sub" / "f.txt").read_bytes() == "é\n".encode()
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.endswith(".tmp")]


def test_respect_umask_fixes_a_private_file(tmp_path, umask_027):
    p = tmp_path / "f"
    p.write_text("x")
    p.chmod(0o600)
    respect_umask(p)
    assert p.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "f"
    atomic_write_text(p, "old\n")
    with pytest.raises(TypeError):
        atomic_write_text(p, 3)  # type: ignore[arg-type]
    assert p.read_text() == "old\n"
    assert [q.name for q in tmp_path.iterdir()] == ["f"]


def test_write_json_is_indented_utf8_with_a_final_newline(tmp_path):
    write_json(tmp_path / "a.json", {"émotion": "joie", "n": [1, 2]})
    text = (tmp_path / "a.json").read_text(encoding="utf-8")
    assert text.endswith("}\n") and '"émotion": "joie"' in text and '\n  "n": [' in text
    assert json.loads(text) == {"émotion": "joie", "n": [1, 2]}
