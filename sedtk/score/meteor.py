"""METEOR 1.5 through one long-lived JVM, scored in pipelined batches (Sec. 4.5, Table 1 "M").

pycocoevalcap's :class:`~pycocoevalcap.meteor.meteor.Meteor` runs the same jar with the same
arguments but sends one ``SCORE`` line and waits for its answer before sending the next (45k
round trips), and it pipes the JVM's stderr without ever reading it, so a chatty JVM fills the
pipe and both processes wait on each other forever.  This wrapper keeps the jar, its arguments
and its protocol (``SCORE ||| refs ||| hyp`` -> statistics, then one ``EVAL ||| stats ...`` line ->
one score per segment and the corpus score), so the numbers are the library's own, but

* a writer thread streams every ``SCORE`` line while the caller reads the answers (no lock-step),
* stderr goes to a temporary file that is quoted when the JVM dies instead of hanging,
* the JVM is started once and reused for every system until :meth:`close`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from sedtk.errors import InputError, SedtkError


class MeteorError(SedtkError, RuntimeError):
    """The METEOR JVM could not start or died; the message quotes its stderr."""


def _clean(segment: str) -> str:
    # What pycocoevalcap does to hypotheses; done to references too so that a '|||' can never
    # shift the protocol's fields.
    return " ".join(segment.replace("|||", "").split())


class MeteorScorer:
    """One METEOR JVM (``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm``, as pycocoevalcap)."""

    def __init__(self, java: str = "java", max_heap: str = "2G") -> None:
        from pycocoevalcap.meteor import meteor as pycoco_meteor

        if shutil.which(java) is None:
            raise FileNotFoundError(
                f"METEOR needs a Java runtime: {java!r} is not on PATH (or skip it with --no-meteor)"
            )
        self._cwd = Path(pycoco_meteor.__file__).resolve().parent
        jar = self._cwd / pycoco_meteor.METEOR_JAR
        if not jar.exists():
            raise FileNotFoundError(f"{jar}: METEOR jar not found (reinstall pycocoevalcap)")
        self.cmd = [java, "-jar", f"-Xmx{max_heap}", str(jar), "-", "-", "-stdio", "-l", "en", "-norm"]
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            self.cmd, cwd=self._cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self._lock = threading.Lock()

    # -- protocol ------------------------------------------------------------------------------
    def _died(self, what: str) -> MeteorError:
        self._stderr.seek(0)
        err = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-20:]
        code = self._proc.poll()
        return MeteorError(f"METEOR JVM {what} (exit code {code}); its stderr ends with:\n" + "\n".join(err))

    def _readline(self) -> str:
        line = self._proc.stdout.readline()
        if not line:
            raise self._died("stopped answering")
        return line.decode("utf-8").strip()

    def _stream(self, lines: list[bytes], errors: list[BaseException]) -> None:
        try:
            for line in lines:
                self._proc.stdin.write(line)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:  # the reader reports the JVM's death
            errors.append(e)

    def compute_score(
        self, gts: Mapping[str, Sequence[str]], res: Mapping[str, Sequence[str]]
    ) -> tuple[float, list[float]]:
        """pycocoevalcap's interface: ``gts[k]`` reference list, ``res[k]`` one hypothesis.

        Returns the corpus METEOR (the jar aggregates statistics, so it is *not* the mean of the
        segment scores) and one segment score per key, in the key order of ``gts``.
        """
        if gts.keys() != res.keys():
            raise ValueError("METEOR: references and hypotheses have different keys")
        keys = list(gts)
        if not keys:
            raise ValueError("METEOR: nothing to score")
        lines = []
        for k in keys:
            if len(res[k]) != 1 or not gts[k]:
                raise InputError(f"METEOR: {k!r} needs exactly one hypothesis and at least one reference")
            refs = " ||| ".join(_clean(r) for r in gts[k])
            lines.append(f"SCORE ||| {refs} ||| {_clean(res[k][0])}\n".encode())
        with self._lock:
            if self._proc.poll() is not None:
                raise self._died("is not running")
            errors: list[BaseException] = []
            writer = threading.Thread(target=self._stream, args=(lines, errors), daemon=True)
            writer.start()
            stats = [self._readline() for _ in keys]
            writer.join()
            if errors:
                raise self._died(f"closed its input ({errors[0]})")
            try:
                self._proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise self._died("closed its input") from None
            scores = [float(self._readline()) for _ in keys]
            corpus = float(self._readline())
        return corpus, scores

    def method(self) -> str:
        return "METEOR"

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the JVM (idempotent)."""
        proc = getattr(self, "_proc", None)
        if proc is None:
            return
        with self._lock:
            if proc.poll() is None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout.close()
            self._stderr.close()
            self._proc = None

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_proc", None) is not None and self._proc.poll() is None:
            self._proc.kill()
