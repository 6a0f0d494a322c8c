"""Worker processes (``prove --jobs``): the verdicts of one worker, and no child outlives its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import register_for_test
from test_faults import exe, session_members, wait_until
from test_proofs import ForgetsRightFree

from pcpuverify.invariants.check import check_state
from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.reference import Reference
from pcpuverify.proofs.children import ChildFailed, Later, run_all
from pcpuverify.proofs.initiation import admissible_layouts, first_chunk_initiation
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic import encode


def _rows(results: list[Result]) -> list[tuple[str, str, str]]:
    return [(r.invariant, r.op, r.verdict.value) for r in results]


def _fail() -> int:
    raise ValueError("a bug in a child")


def test_children_give_their_values_in_order_and_raise_their_errors() -> None:
    seen: list[int] = []
    values = run_all([lambda: os.getpid(), lambda: 2, lambda: 3], jobs=2, settled=lambda i, v: seen.append(i))
    assert values[1:] == [2, 3] and values[0] != os.getpid() and sorted(seen) == [0, 1, 2]
    assert run_all([lambda: os.getpid()], jobs=1) == [os.getpid()]  # one worker: here, no fork
    with pytest.raises(ChildFailed, match="ValueError: a bug in a child"):
        run_all([_fail, lambda: 1], jobs=2)
    later = Later(_fail, background=True)
    with pytest.raises(ChildFailed, match="a bug in a child"):
        later.result()


@pytest.mark.slow
def test_first_chunk_initiation_dealt_out_names_the_same_first_layout() -> None:
    """v1's posted setup code breaks some invariant on some layout: the same one, whatever the deal."""
    g = Geometry.parse("1x8")
    one = first_chunk_initiation("v1", g)
    assert any(r.verdict.value == "VIOLATED" for r in one)
    three = first_chunk_initiation("v1", g, jobs=3)
    assert [(r.invariant, r.verdict, r.detail) for r in three] == [(r.invariant, r.verdict, r.detail) for r in one]


class MiscountsBesideAReservedChunk(PcpuAllocator):
    """v1-patch09 whose setup miscounts the dynamic chunk's free bits when a reserved chunk comes first: a break
    that the first layouts (no reserved region) do not show."""

    variant = "miscounts-beside-a-reserved-chunk"

    def pcpu_chunk_relocate(self, chunk: PcpuChunk, oslot: int) -> None:
        if oslot == -1 and self.pcpu_reserved_chunk is not None and chunk is not self.pcpu_reserved_chunk:
            chunk.free_bits -= 1
        super().pcpu_chunk_relocate(chunk, oslot)


# the fast loop keeps fixed and the mutant (its break is not on the first layout); v1 and v1-patch09 run in the full one
@pytest.mark.parametrize("variant", [pytest.param("v1", marks=pytest.mark.slow),
                                     pytest.param("v1-patch09", marks=pytest.mark.slow),
                                     "fixed", MiscountsBesideAReservedChunk.variant])
def test_first_chunk_initiation_checks_each_state_once_and_names_the_layout_every_layout_names(
        variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Layouts that set up the same allocator are checked once: the rows are those of checking every layout in
    turn, each violation at the first layout that shows it (for the mutant, not the first layout)."""
    register_for_test(monkeypatch, MiscountsBesideAReservedChunk.variant, MiscountsBesideAReservedChunk,
                      encode.SymPercpu)
    g = Geometry.parse("1x8")
    first: dict[str, FirstChunkInit] = {}
    for layout in admissible_layouts(g.page_size):
        for v in check_state(Reference(variant, g, layout)):
            first.setdefault(v.invariant, layout)
    assert variant != MiscountsBesideAReservedChunk.variant or first["free-bits-count"].reserved_size > 0
    rows = {r.invariant: r for r in first_chunk_initiation(variant, g)}
    assert {name for name, r in rows.items() if r.verdict.value == "VIOLATED"} == set(first)
    for name, layout in first.items():
        assert rows[name].detail == (f"static_size={layout.static_size} reserved_size={layout.reserved_size}"
                                     f" dyn_size={layout.dyn_size}"), (name, rows[name].detail)


@pytest.mark.slow
def test_conformance_beside_the_solver_still_refuses_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """With workers, conformance runs in a child while Houdini runs here: its mismatch still makes every row
    NONCONFORMANT, and no row is reported before it is known."""
    register_for_test(monkeypatch, "forgets-right-free", ForgetsRightFree, encode.SymPercpu)
    reported: list[Result] = []
    results = run_suite("forgets-right-free", Geometry.parse("1x8"),
                        SuiteOptions(solver=SolverOptions(jobs=2), depth=2), progress=reported.append)
    assert results and all(r.verdict.value == "NONCONFORMANT" for r in results)
    assert reported == results and "right_free" in results[0].detail


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fixed", "v1"])
def test_workers_give_the_verdicts_of_one_worker(variant: str) -> None:
    """1x8, Z3 (the deterministic mode): every row, in the same order, with jobs 1 and 2; v1's violations
    are found by bounded model checks run side by side, and each row is reported once as it settles."""
    g = Geometry.parse("1x8")
    one = run_suite(variant, g, SuiteOptions(depth=3))
    streamed: list[Result] = []
    two = run_suite(variant, g, SuiteOptions(solver=SolverOptions(jobs=2), depth=3), progress=streamed.append)
    assert _rows(two) == _rows(one)
    assert sorted(_rows(streamed)) == sorted(_rows(two))
    if variant == "v1":
        assert any(r.verdict.value == "VIOLATED" for r in two)


@pytest.mark.slow
def test_prove_with_jobs_at_2x8_says_what_one_worker_says(tmp_path: Path) -> None:
    command = [exe(), "prove", "--variant", "fixed", "--geometry", "2x8", "--solver", "z3", "--no-layout", "--json"]
    runs = [subprocess.run([*command, "--jobs", jobs], capture_output=True, text=True, timeout=900, check=False)
            for jobs in ("1", "0")]
    assert [r.returncode for r in runs] == [0, 0], runs[1].stderr[-3000:]
    one, many = ([(r["invariant"], r["op"], r["result"]) for r in json.loads(run.stdout)["results"]] for run in runs)
    assert many == one and len(one) > 80


@pytest.fixture
def running_prove() -> Any:
    """``prove --jobs 2`` in its own session, once it has forked children; all of it killed after."""
    proc = subprocess.Popen([exe(), "prove", "--variant", "fixed", "--geometry", "2x8", "--solver", "z3",
                             "--jobs", "2", "--no-layout"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert wait_until(lambda: len(session_members(proc.pid)) >= 3, 60), session_members(proc.pid)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever a failure left behind
        except ProcessLookupError:
            pass
        proc.communicate(timeout=60)


def test_sigterm_stops_prove_and_its_children(running_prove: subprocess.Popen[str]) -> None:
    running_prove.send_signal(signal.SIGTERM)  # to the parent only, as a CI runner or `kill` sends it
    _, err = running_prove.communicate(timeout=60)
    assert running_prove.returncode == 143, err[-3000:]
    assert "terminated" in err and "Traceback" not in err
    assert wait_until(lambda: not session_members(running_prove.pid), 15), session_members(running_prove.pid)


def test_children_leave_with_a_killed_prove(running_prove: subprocess.Popen[str]) -> None:
    running_prove.kill()
    running_prove.wait(timeout=60)
    assert wait_until(lambda: not session_members(running_prove.pid), 15), session_members(running_prove.pid)
