"""A `prove` stopped by Ctrl-C or SIGTERM prints the rows it had, the open ones as far as they got.

A NOT-INDUCTIVE row is held back until the breadth-first search and the closed sets have run; a run stopped
in those stages (at 2x8 and 3x8 they take most of an hour) used to lose it, and every other row with it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from typing import Any

import pytest
from test_faults import exe

from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs import suite
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.suite import SuiteOptions, run_suite

ROW = "nr-empty-pop-pages-by-block"  # mainline's free row: open after consecution (test_breadth_first.py)
ONE_PAGE = Geometry.parse("1x4")


def _stop(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize(("stage", "block_states", "said"), [
    ("_breadth_first", 0, "none within depth 2; stopped during the breadth-first search"),
    # the search has run (its whole reach, a fixpoint at 1x4), the closure had not
    pytest.param("close", 100, "none within depth 2, nor in a breadth-first search on model/ (every state reached"
                 " while an open row's invariant holds, 1,548, within 19 operations: it holds there, not proved);"
                 " stopped while the closed sets were grown", marks=pytest.mark.slow),  # the seeding walks: 20 s
])
def test_a_row_held_back_is_reported_as_far_as_it_got(stage: str, block_states: int, said: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suite, stage, _stop)
    reported: list[Result] = []
    with pytest.raises(KeyboardInterrupt):
        run_suite("mainline", ONE_PAGE, SuiteOptions(depth=2, search_walks=0, block_states=block_states),
                  invariants={ROW}, ops={"free"}, progress=reported.append)
    assert [(r.invariant, r.op, r.verdict.value, r.detail) for r in reported] == [
        (ROW, "init", "PROVED", ""), (ROW, "free", "NOT-INDUCTIVE", said)]
    assert reported[-1].cti is not None  # still the counterexample to induction it had


@pytest.mark.parametrize(("sent", "code", "how"), [(signal.SIGINT, 130, "interrupted"),
                                                    pytest.param(signal.SIGTERM, 143, "terminated",
                                                                 marks=pytest.mark.slow)])
def test_a_stopped_prove_prints_its_rows(sent: int, code: int, how: str) -> None:
    """Stopped in the breadth-first search (a million states at 1x8: minutes), after the PROVED row of
    ``free-bits-count``, whose report lets the log's first line out."""
    proc = subprocess.Popen([exe(), "prove", "--variant", "mainline", "--geometry", "1x8", "--invariant", ROW,
                             "--invariant", "free-bits-count", "--op", "free", "--depth", "2", "--search-walks", "0",
                             "--search-states", "1000000", "--block-states", "0", "--no-witnesses", "--no-layout",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a terminal's Ctrl-C: a job started with `&` (a CI script run so) ignores SIGINT, and
                            # its children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = proc.stderr.readline() if proc.stderr is not None else ""
        assert first.startswith("prove: mainline 1x8: init (every invariant): 2 PROVED"), first
        try:
            proc.wait(timeout=10)  # the bounded check of depth 2, then the search, which this does not outlast
        except subprocess.TimeoutExpired:
            proc.send_signal(sent)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code and f"pcpu-verify: {how}" in err and "Traceback" not in err, err[-3000:]
    printed = json.loads(out)
    assert printed["stopped"] == how and printed["options"]["search_states"] == 1_000_000
    assert [(r["invariant"], r["op"], r["result"]) for r in printed["results"]] == [
        ("free-bits-count", "init", "PROVED"), (ROW, "init", "PROVED"), ("free-bits-count", "free", "PROVED"),
        (ROW, "free", "NOT-INDUCTIVE")]
    assert printed["results"][-1]["detail"] == "none within depth 2; stopped during the breadth-first search"


def test_ctrl_c_in_a_z3_query_stops_prove_at_once() -> None:
    """Z3 took Ctrl-C itself, answered unknown and the run went on (past 300 s here, where it now leaves at
    once): the first consecution query of ``free-bits-count``/free at 4x16 takes Z3 minutes."""
    proc = subprocess.Popen([exe(), "prove", "--solver", "z3", "--variant", "fixed", "--geometry", "4x16",
                             "--invariant", "free-bits-count", "--op", "free", "--depth", "1", "--no-layout"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = proc.stderr.readline() if proc.stderr is not None else ""
        assert first.startswith("prove: fixed 4x16: init (every invariant): 1 PROVED"), first
        time.sleep(8)  # into the consecution query, which follows the initiation rows
        proc.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=120)
        seconds = time.monotonic() - signalled
    finally:
        proc.kill()
    assert (proc.returncode, seconds < 10) == (130, True), (seconds, err[-3000:])
    assert "pcpu-verify: interrupted" in err and "Traceback" not in err, err[-3000:]
    assert "free-bits-count  1P" in out, out  # the initiation row, printed
