"""What a step leaves out, counted per reason: one mechanism for every "dropped N because ..." report.

Nothing is dropped silently: a step that skips an item (an utterance without features, a label outside
the inventory, an unreadable clip, a missing hypothesis) records it in a :class:`Drops` with its
reason.  The counts are logged as one WARNING summary (:meth:`Drops.lines`), written into the step's
JSON summary (:meth:`Drops.to_dict`), and :meth:`Drops.check` refuses to go on when more than a
given share of the items is lost -- a data dir with half its features missing is an error, not a run
on half the data.

Reasons are short phrases ("no features in the dump", "label not in the inventory").  A reason may
be *scoped* to one part of the work (a training task: ``scope="ser_sed"``); the share that
:meth:`Drops.check` compares is then per scope: items dropped for every scope plus those dropped for
that one, over all items.  Reasons that are *intended* filters (``exempt``: utterances longer than
``data.max_duration``, which the config asks to skip) are counted and shown but do not count towards
the limit.

This module imports nothing from sedtk but the errors, so every floor can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sedtk.errors import InputError

#: Keys kept per reason to show as examples.
MAX_EXAMPLES = 3
#: Keys kept per reason for the JSON summary's full list (the count goes on beyond it).
MAX_KEYS = 1000


@dataclass
class Drops:
    """Items left out of a step: ``total`` considered, and per ``(scope, reason)`` a count and examples.

    ``what`` names the items in messages ("train utterances").  ``scope`` ``None`` means the item is
    lost for every scope (e.g. for every training task).  ``keys`` lists every key dropped per
    reason (each once, up to :data:`MAX_KEYS`) for the JSON summary; ``details`` says what happened
    to a key where that is more than its reason (an unreadable clip's error).
    """

    what: str
    total: int = 0
    counts: dict[tuple[str | None, str], int] = field(default_factory=dict)
    examples: dict[tuple[str | None, str], list[str]] = field(default_factory=dict)
    exempt: set[str] = field(default_factory=set)
    keys: dict[tuple[str | None, str], list[str]] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def add(
        self, reason: str, key: str | None = None, scope: str | None = None, detail: str | None = None
    ) -> None:
        """Count one item dropped for ``reason`` (in ``scope``; ``None``: in every scope)."""
        k = (scope, reason)
        self.counts[k] = self.counts.get(k, 0) + 1
        if key is None:
            return
        keys = self.keys.setdefault(k, [])
        if key in keys:  # the same item again (a clip that fails in every epoch): counted, listed once
            return
        ex = self.examples.setdefault(k, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(key)
        if len(keys) < MAX_KEYS:
            keys.append(key)
        if detail:
            self.details.setdefault(key, detail)

    def merge(self, other: Drops) -> None:
        """Add ``other``'s counts (the same kind of items, e.g. from another worker)."""
        self.total += other.total
        self.exempt |= other.exempt
        for k, n in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + n
            keys = self.keys.setdefault(k, [])
            new = [x for x in other.keys.get(k, []) if x not in keys]
            keys += new[: MAX_KEYS - len(keys)]
            ex = self.examples.setdefault(k, [])
            ex += [x for x in other.examples.get(k, []) if x not in ex][: MAX_EXAMPLES - len(ex)]
        for key, d in other.details.items():
            self.details.setdefault(key, d)

    # -- views ------------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Items dropped (an item dropped in two scopes counts twice)."""
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)

    def by_reason(self) -> dict[str, int]:
        """``"reason"`` or ``"scope: reason"`` -> count, largest first."""
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0][0] or "", kv[0][1]))
        return {_label(k): n for k, n in items}

    def share(self, scope: str | None = None, exempt: bool = False) -> float:
        """Share of the items lost for ``scope`` (those lost everywhere included); intended filters
        are left out unless ``exempt``."""
        if not self.total:
            return 0.0
        n = sum(
            c
            for (s, r), c in self.counts.items()
            if (s is None or s == scope) and (exempt or r not in self.exempt)
        )
        return n / self.total

    def scopes(self) -> list[str | None]:
        """The scopes with drops (``None`` first when items are lost everywhere)."""
        return sorted({s for s, _ in self.counts}, key=lambda s: (s is not None, s or ""))

    def lines(self) -> list[str]:
        """The WARNING summary: a head line and one line per reason with example keys (empty if none)."""
        if not self.counts:
            return []
        worst = max((self.share(s, exempt=True) for s in self.scopes()), default=0.0)
        lost = round(worst * self.total)
        out = [f"dropped {lost} of {self.total} {self.what} ({100 * worst:.1f} %):"]
        for k, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0][0] or "", kv[0][1])):
            ex = self.examples.get(k) or []
            more = f", e.g. {', '.join(ex)}" if ex else ""
            note = " (intended: not counted towards the limit)" if k[1] in self.exempt else ""
            out.append(f"  {n} {_label(k)}{more}{note}")
        return out

    def summary(self) -> str:
        """One line: ``dropped 96 of 192 train utterances: 96 no features in the dump``."""
        if not self.counts:
            return f"dropped 0 of {self.total} {self.what}"
        head = self.lines()[0].rstrip(":")
        return f"{head}: " + ", ".join(f"{n} {r}" for r, n in self.by_reason().items())

    def to_dict(self) -> dict:
        """For a JSON summary: ``total``, ``dropped`` per reason, the example keys, every key (``keys``,
        up to :data:`MAX_KEYS` per reason) and the ``details`` of those that have one."""
        out = {
            "what": self.what,
            "total": self.total,
            "dropped": self.by_reason(),
            "examples": {_label(k): list(v) for k, v in self.examples.items() if v},
            "keys": {_label(k): list(v) for k, v in self.keys.items() if v},
            "exempt": sorted(self.exempt),
            "scopes": [s for s in self.scopes() if s],
        }
        if self.details:
            out["details"] = dict(self.details)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Drops:
        """The inverse of :meth:`to_dict` (e.g. what a checkpoint saved, or another rank sent)."""
        out = cls(d["what"], d.get("total", 0), exempt=set(d.get("exempt", [])))
        for label, n in d.get("dropped", {}).items():
            k = _unlabel(label, n, d)
            out.counts[k] = n
            out.keys[k] = list(d.get("keys", {}).get(label, []))
            out.examples[k] = list(d.get("examples", {}).get(label, []))
        out.details = dict(d.get("details", {}))
        return out

    # -- the limit --------------------------------------------------------------------------
    def check(self, limit: float, source: str, hint: str = "") -> None:
        """Raise :class:`~sedtk.errors.InputError` when a scope loses more than ``limit`` (a share).

        ``source`` names the data (a data dir); ``hint`` says how to raise the limit.
        """
        for scope in self.scopes():
            share = self.share(scope)
            if share > limit:
                counted = [
                    (k, n)
                    for k, n in self.counts.items()
                    if (k[0] is None or k[0] == scope) and k[1] not in self.exempt
                ]
                k, n = max(counted, key=lambda kv: kv[1])
                ex = self.examples.get(k) or []
                lost = round(share * self.total)
                where = f" for {scope}" if scope else ""
                raise InputError(
                    f"{source}: {lost} of {self.total} {self.what} ({100 * share:.1f} %) would be dropped"
                    f"{where}, more than the limit of {100 * limit:g} %; most for '{k[1]}' ({n}"
                    + (f", e.g. {', '.join(ex)}" if ex else "")
                    + ")"
                    + (f"; {hint}" if hint else "")
                )


def _label(k: tuple[str | None, str]) -> str:
    scope, reason = k
    return f"{scope}: {reason}" if scope else reason


def _unlabel(label: str, n: int, d: dict) -> tuple[str | None, str]:
    """The ``(scope, reason)`` of a :func:`_label` (``d["scopes"]`` names the scopes when saved)."""
    for scope in d.get("scopes", []):
        if label.startswith(f"{scope}: "):
            return scope, label[len(scope) + 2 :]
    return None, label
