"""``wav.scp`` values with Kaldi's semantics: a file, or a command whose output is the audio.

A value ending in ``|`` is a command (Kaldi's "rxfilename" pipe): Kaldi runs it through ``sh -c``
from the current directory and reads a WAV from its standard output.  sedtk does the same, with two
refinements that change no sample value a user should care about:

* **Recognised decode commands are read from their input file directly.**  ``ffmpeg -i X [-ar 16000]
  [-ac 1] -f wav pipe:1 |`` (GigaSpeech's own Kaldi prep), ``sox X [-r 16000] [-c 1] [-b 16] -t wav
  - [rate 16000] |`` and ``flac -c -d -s X |`` (LibriSpeech's) only decode ``X`` to 16 kHz WAV, which
  the audio loader (:mod:`sedtk.data.audio`) does itself; read directly, a *segment* of a long
  recording costs a seek instead of decoding the whole recording once per segment.  For lossless
  inputs (wav, flac) the samples equal the command's output bit for bit (``tests/data/test_wavscp.py``
  checks it with the real programs).  For lossy inputs they cannot: soundfile decodes Opus with
  libopus at the file's own rate (16 kHz for GigaSpeech), ffmpeg with its own decoder at 48 kHz, then
  resamples and rounds to 16 bits; on speech at 16-64 kbit/s the two agree to 35-40 dB SNR and are
  equally close to the source.  Anything else in the command (a seek,
  a filter, another rate, ``remix 1``) makes it unrecognised.
* **Any other command runs as a command**, exactly as Kaldi runs it (``sh -c``, from the current
  directory, nothing of sedtk's spliced into it); a failure is an :class:`AudioError` quoting the
  command, its exit status and the end of its messages.

Relative paths inside a command (recognised or not) are relative to the current directory, as for
the shell; relative plain paths are resolved by the data dir (:meth:`DataDir.resolve_audio`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile

from sedtk.errors import AudioError

#: Characters that make a command more than one program with arguments (never recognised).
_SHELL_SYNTAX = set(";&|<>$`(){}*?[]~\n")
#: Sample rate a recognised command may ask for (the toolkit's own).
_RATE = 16000


def is_pipe(value: str) -> bool:
    """True for a Kaldi pipe value (``command |``)."""
    return value.rstrip().endswith("|")


def command_of(value: str) -> str:
    """The command of a pipe value, without the trailing ``|``."""
    return value.rstrip()[:-1].strip()


def recognise(value: str) -> str | None:
    """The input file of a recognised decode-to-16-kHz-WAV pipe (see the module doc), else None."""
    if not is_pipe(value):
        return None
    cmd = command_of(value)
    if not cmd or _SHELL_SYNTAX & set(cmd.replace("pipe:1", "").replace("pipe:", "")):
        return None
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    if not words:
        return None
    prog = os.path.basename(words[0])
    parse = {"ffmpeg": _ffmpeg_input, "sox": _sox_input, "flac": _flac_input}.get(prog)
    return parse(words[1:]) if parse else None


def _rate_ok(v: str) -> bool:
    return v in (str(_RATE), "16k", "16000.0")


def _ffmpeg_input(args: list[str]) -> str | None:
    """``ffmpeg [-hide_banner -nostdin -y -loglevel L] -i X [-ar 16000 -ac 1 -vn -acodec pcm_*] -f wav -``."""
    flags = {"-hide_banner", "-nostdin", "-y", "-nostats", "-vn", "-sn", "-dn", "-bitexact"}
    if len(args) < 3 or args[-1] not in ("pipe:1", "pipe:", "-"):
        return None
    src, fmt = None, None
    it = iter(args[:-1])
    for a in it:
        if a in flags:
            continue
        v = next(it, None)
        if v is None:
            return None
        if a in ("-loglevel", "-v", "-threads"):
            continue
        if src is None:  # before the input, only "-i X" (an input option would change its decoding)
            if a != "-i":
                return None
            src = v
        elif a == "-ar" and _rate_ok(v) or a == "-ac" and v == "1":
            continue
        elif a == "-f":
            fmt = v
        elif a in ("-acodec", "-c:a", "-codec:a") and v.startswith("pcm_"):
            continue
        elif a == "-sample_fmt" and v in ("s16", "s32", "flt"):
            continue
        elif a == "-map_metadata" and v == "-1":
            continue
        else:
            return None
    return src if src and fmt == "wav" else None


def _sox_input(args: list[str]) -> str | None:
    """``sox [-q] [-t T] X [-r 16000 -c 1 -b 16 -e signed-integer] -t wav - [rate [-v] 16k] [channels 1]``."""
    words = [a for a in args if a not in ("-q", "-G", "--no-glob")]
    try:
        out = words.index("-")
    except ValueError:
        return None
    head, effects = words[:out], words[out + 1 :]
    files = []
    out_type = None
    it = iter(head)
    for a in it:
        if a.startswith("-") and a != "-":
            v = next(it, None)
            if v is None:
                return None
            if a in ("-t", "--type"):
                if files:  # after the input: the output type
                    out_type = v
            elif a in ("-r", "--rate") and files:
                if not _rate_ok(v):
                    return None
            elif a in ("-c", "--channels") and files:
                if v != "1":
                    return None
            elif a in ("-b", "--bits") and files:
                if v not in ("16", "24", "32"):
                    return None
            elif a in ("-e", "--encoding") and files:
                if v not in ("signed-integer", "signed", "floating-point"):
                    return None
            else:
                return None
        else:
            files.append(a)
    if len(files) != 1 or out_type != "wav":
        return None
    i = 0
    while i < len(effects):
        e = effects[i]
        if e == "rate":
            i += 1
            while i < len(effects) and effects[i] in ("-v", "-h", "-m", "-l", "-q", "-s", "-I", "-L", "-M"):
                i += 1
            if i >= len(effects) or not _rate_ok(effects[i]):
                return None
        elif e == "channels" or e == "remix":
            i += 1
            if i >= len(effects) or effects[i] not in ("1", "-"):
                return None
            if e == "remix" and effects[i] != "-":
                return None
        else:
            return None
        i += 1
    return files[0]


def _flac_input(args: list[str]) -> str | None:
    """``flac -c -d -s X`` (any order, combined as ``-cds``, or ``--stdout --decode --silent``)."""
    long = {"--stdout": "c", "--decode": "d", "--silent": "s"}
    letters: set[str] = set()
    files = []
    for a in args:
        if a in long:
            letters.add(long[a])
        elif len(a) > 1 and a[0] == "-" and a[1] != "-" and set(a[1:]) <= set("cdsf"):
            letters |= set(a[1:])
        else:
            files.append(a)
    if len(files) != 1 or files[0].startswith("-") or not {"c", "d"} <= letters:
        return None
    return files[0]


def resolve(value: str, base: str | os.PathLike | None) -> str:
    """The audio a wav.scp value names: a path (relative ones against ``base``), the input file of a
    recognised pipe (relative to the current directory, as for the shell), or the pipe itself."""
    value = value.strip()
    if is_pipe(value):
        src = recognise(value)
        return os.path.abspath(src) if src is not None else value
    if os.path.isabs(value) or base is None:
        return value
    return os.path.join(os.fspath(base), value)


def program_missing(value: str) -> str | None:
    """The program of a pipe that is not on PATH (a cheap check before running anything), else None."""
    try:
        words = shlex.split(command_of(value))
    except ValueError:
        return None
    if not words or "=" in words[0] or any(c in words[0] for c in _SHELL_SYNTAX):
        return None
    prog = words[0]
    if os.sep in prog:
        return None if os.access(prog, os.X_OK) else prog
    return None if shutil.which(prog) else prog


def run(value: str) -> bytes:
    """Run a pipe value's command as Kaldi does (``sh -c`` from the current directory); its stdout.

    Raises :class:`AudioError` quoting the command when it fails or writes nothing.
    """
    cmd = command_of(value)
    with tempfile.TemporaryFile() as err:  # a full stderr pipe would block the command
        p = subprocess.run(
            ["/bin/sh", "-c", cmd], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
        )
        err.seek(0)
        msg = err.read().decode("utf-8", "replace")
    tail = "; ".join(x.strip() for x in msg.strip().splitlines()[-3:] if x.strip())
    if p.returncode != 0:
        raise AudioError(
            f"wav.scp command {value.strip()!r} failed (exit status {p.returncode})"
            + (f": {tail}" if tail else "")
        )
    if not p.stdout:
        raise AudioError(f"wav.scp command {value.strip()!r} wrote no audio" + (f" ({tail})" if tail else ""))
    return p.stdout
