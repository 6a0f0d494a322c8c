"""Verdicts and results: values, never printouts (printing happens in one place, the CLI)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.Enum):
    PROVED = "PROVED"  # unsat, and the assumptions are satisfiable
    VIOLATED = "VIOLATED"  # a trace that replays on model/ and breaks the invariant there
    NOT_INDUCTIVE = "NOT-INDUCTIVE"  # consecution fails, no reachable violation within the depth searched
    UNKNOWN = "UNKNOWN"  # solver timeout, resource limit or unknown: never a pass
    VACUOUS = "VACUOUS"  # the assumptions are unsatisfiable: a failure of ours
    SPURIOUS = "SPURIOUS"  # the encoding says sat but replay on model/ disagrees: a failure of ours
    NONCONFORMANT = "NONCONFORMANT"  # the encoding disagrees with model/ on concrete states: nothing is proved

    @property
    def passed(self) -> bool:
        """Whether the verdict is a definite answer about the allocator (not a failure of the tool)."""
        return self in (Verdict.PROVED, Verdict.VIOLATED, Verdict.NOT_INDUCTIVE)


@dataclass(frozen=True)
class Result:
    """One obligation's outcome.

    ``op`` is ``"init"`` for initiation, an operation name for consecution,
    ``"layout"`` for the first-chunk arithmetic.  ``trace`` is the replayed
    counterexample (a ``pcpu-verify-trace/1`` dict) for VIOLATED; ``cti`` the
    before/after states of a counterexample to induction for NOT-INDUCTIVE.
    """

    variant: str
    geometry: str
    invariant: str
    op: str
    verdict: Verdict
    seconds: float
    detail: str = ""
    trace: dict[str, Any] | None = None
    cti: dict[str, Any] | None = None
    depth: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "variant": self.variant,
            "geometry": self.geometry,
            "invariant": self.invariant,
            "op": self.op,
            "result": self.verdict.value,
            "seconds": round(self.seconds, 3),
        }
        for key in ("detail", "trace", "cti", "depth"):
            value = getattr(self, key)
            if value not in (None, ""):
                data[key] = value
        data.update(self.extra)
        return data
