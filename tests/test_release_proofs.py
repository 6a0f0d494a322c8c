"""The proof suites of the release encodings: mainline-fixed is proved, mainline's findings are VIOLATED.

Slow: a 1x8 suite of a release variant takes minutes (README's matrix table has the times).
"""

from __future__ import annotations

import pytest

from pcpuverify.invariants.check import first_violation
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.trace import trace_from_json
from pcpuverify.proofs.results import Verdict
from pcpuverify.proofs.suite import SuiteOptions, run_suite

ONE_BLOCK = Geometry.parse("1x8")


@pytest.mark.slow
def test_mainline_fixed_is_proved_on_one_block() -> None:
    """Every row of mainline-fixed at 1x8 (initiation, consecution with Houdini, the step invariants) is PROVED."""
    results = run_suite("mainline-fixed", ONE_BLOCK, SuiteOptions(depth=2))
    assert len(results) == 136
    assert {r.verdict for r in results} == {Verdict.PROVED}, [
        (r.invariant, r.op, r.verdict.value) for r in results if r.verdict is not Verdict.PROVED]


@pytest.mark.slow
def test_mainline_scan_hint_finding_is_violated_and_replays() -> None:
    """mainline breaks scan-hint-before-contig-hint: within depth 4 the free row is VIOLATED (4 ops: alloc 1;
    alloc 1; alloc 1 align 4; free 1), and the suite's trace replays on the model.  (The alloc row's shortest
    trace, gallery 16, is 6 ops: past depth 4 it is NOT-INDUCTIVE without a witness.)"""
    results = run_suite("mainline", ONE_BLOCK, SuiteOptions(depth=4),
                        invariants={"scan-hint-before-contig-hint"}, ops={"free"})
    (row,) = [r for r in results if r.op == "free"]
    assert row.verdict is Verdict.VIOLATED and row.trace is not None
    trace = trace_from_json(row.trace)
    assert first_violation(trace, "scan-hint-before-contig-hint") == len(trace.ops) - 1
