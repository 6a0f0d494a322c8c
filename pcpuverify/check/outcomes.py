"""What the check says of each row: exit codes, errors, outcomes and the row itself."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pcpuverify.check.obligation import LAYOUT_OP, Obligation
from pcpuverify.invariants.check import UnknownInvariant
from pcpuverify.model import variants as model_variants
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import GeometryError
from pcpuverify.model.reference import OpError
from pcpuverify.model.trace import OutputError, TraceError
from pcpuverify.proofs.initiation import OP as FIRST_CHUNK_OP
from pcpuverify.proofs.results import Verdict

CACHE_FORMAT = "pcpu-verify-check-cache/1"
BASELINE_FORMAT = "pcpu-verify-baseline/1"
CONFIG_TABLE = "tool.pcpu-verify"

# The ported function each kind of obligation exercises first (SARIF points there).
OP_FUNCTIONS = {
    "init": "pcpu_alloc_chunk",
    FIRST_CHUNK_OP: "pcpu_alloc_first_chunk",
    "alloc": "pcpu_alloc_area",
    "free": "pcpu_free_area",
    "populate": "pcpu_chunk_populated",
    "depopulate": "pcpu_chunk_depopulated",
    LAYOUT_OP: "pcpu_setup_first_chunk",  # model/first_chunk.py: a function of the module, not a method
}

TOOL_FAILURES = (Verdict.VACUOUS, Verdict.SPURIOUS, Verdict.NONCONFORMANT)


class CheckError(ValueError):
    """Bad usage or input (config, baseline, plugin, option): one line, exit code 2."""


USER_ERRORS = (CheckError, TraceError, OpError, LayoutError, GeometryError, UnknownInvariant,
               model_variants.UnknownVariant, OutputError)


class Outcome(enum.Enum):
    OK = "ok"  # equals the baseline
    NEW_VIOLATION = "new violation"  # VIOLATED (or broken) where the baseline expects it to hold
    VIOLATION_GONE = "violation gone"  # the baseline expects a violation the run no longer finds
    CHANGED = "changed"  # another verdict than the baseline's, or a row the baseline does not list
    UNKNOWN = "unknown"  # the solver gave no answer within its limits: never a pass
    NOT_RUN = "not run"  # the budget ran out before this row was reached: never a pass
    TOOL_FAILURE = "tool failure"  # VACUOUS, SPURIOUS, NONCONFORMANT: nothing about the allocator is known

    @property
    def regression(self) -> bool:
        return self in (Outcome.NEW_VIOLATION, Outcome.VIOLATION_GONE, Outcome.CHANGED)


NOT_RUN = "NOT RUN"  # the verdict column of a row the budget did not reach


@dataclass(frozen=True)
class Row:
    """One checked row: a proof obligation, a replayed regression trace, or a stateful finding.

    ``key`` says which (its setting: a suite's geometry, a layout precondition
    set, the stateful run, a replay); ``verdict`` is the run's answer (a
    ``Verdict`` value, REPRODUCED/NOT-REPRODUCED for a trace, BROKEN/HELD for
    the stateful machines, or NOT RUN); ``expected`` the baseline's.
    """

    key: Obligation
    verdict: str
    expected: str | None
    outcome: Outcome
    seconds: float = 0.0
    cached: bool = False
    detail: str = ""
    trace: dict[str, Any] | None = None  # the counterexample of a VIOLATED/BROKEN row
    minimised: dict[str, Any] | None = None  # the minimised counterexample of a new violation
    source: str | None = None  # the trace file a replay row replays
    # a layout row's findings (proofs/layout.py's Result.extra): preconditions, breaks_when, counterexample
    layout: dict[str, Any] | None = None

    # The published columns: the reports and --json name a row by these strings.
    @property
    def kind(self) -> str:
        return self.key.kind

    @property
    def variant(self) -> str:
        return self.key.subject

    @property
    def geometry(self) -> str:
        return self.key.setting.label

    @property
    def invariant(self) -> str:
        return self.key.invariant

    @property
    def op(self) -> str:
        return self.key.op

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind, "variant": self.variant, "geometry": self.geometry, "invariant": self.invariant,
            "op": self.op, "result": self.verdict, "expected": self.expected, "outcome": self.outcome.value,
            "seconds": round(self.seconds, 3), "cached": self.cached,
        }
        for key in ("detail", "trace", "minimised", "source", "layout"):
            value = getattr(self, key)
            if value not in (None, ""):
                data[key] = value
        return data
