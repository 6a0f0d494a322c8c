"""SIGTERM where Python cannot raise its exception: a destructor, an at-fork hook, a ctypes (Z3) call.

Each is a place a CI runner's SIGTERM landed in a real ``prove --jobs 2``
(25 runs killed at random times: 3 ran to the end and printed a traceback,
1 exited 4 as an internal error).  The end-to-end test is
``test_jobs.py::test_sigterm_stops_prove_and_its_children``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pcpuverify.proofs import termination
from pcpuverify.proofs.termination import Terminated, sigterm_raises, stop_if_terminated

HINT_OVERLAP = Path(__file__).parent / "traces" / "v1_hint_overlap.json"


@pytest.fixture(autouse=True)
def not_received() -> Iterator[None]:
    termination.RECEIVED.clear()
    yield
    termination.RECEIVED.clear()


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """What reaches the hook ``sigterm_raises`` found (Python's default prints "Exception ignored in ...")."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
    return seen


class _SignalledOnDelete:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # bytecode, where the handler runs: inside the destructor


def test_a_signal_lost_in_a_destructor_is_quiet_and_raised_at_the_next_stop(
        unraisable: list[BaseException | None]) -> None:
    with sigterm_raises():
        _SignalledOnDelete()  # deleted at once: the handler's exception is raised in __del__, and lost
        assert termination.RECEIVED.is_set()
        with pytest.raises(Terminated):
            stop_if_terminated()
    assert unraisable == []


class _Faulty:
    def __del__(self) -> None:
        raise ValueError("a fault in a destructor")


def test_a_destructors_fault_is_reported_until_a_sigterm_comes(unraisable: list[BaseException | None]) -> None:
    with sigterm_raises():
        _Faulty()
        assert [type(e) for e in unraisable] == [ValueError]
        termination.RECEIVED.set()  # then it is debris of what the signal cut short (a Z3 term without its context)
        _Faulty()
    _Faulty()  # at the exit that follows, too
    assert [type(e) for e in unraisable] == [ValueError]


def test_the_handler_and_hook_are_restored_when_no_sigterm_came() -> None:
    handler, hook = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    with sigterm_raises():
        assert signal.getsignal(signal.SIGTERM) is not handler and sys.unraisablehook is not hook
    assert signal.getsignal(signal.SIGTERM) is handler and sys.unraisablehook is hook


FORK_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pcpuverify.proofs.children import FORK, release_signals, start
    from pcpuverify.proofs.termination import Terminated, sigterm_raises

    def signalled_in_the_fork():  # where logging's at-fork lock release was when the signal came
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))

    def child():
        release_signals()

    os.register_at_fork(after_in_parent=signalled_in_the_fork)
    with sigterm_raises():
        proc = FORK.Process(target=child)
        try:
            {start}
            print("ran on")
        except Terminated:
            print("terminated")
        proc.join()
""")


@pytest.mark.parametrize(("start", "expected"), [("start(proc)", "terminated"), ("proc.start()", "ran on")])
def test_a_fork_holds_the_signal_until_it_can_be_raised(start: str, expected: str) -> None:
    """With ``children.start`` the signal is raised after the fork; with a bare ``start()`` it was lost."""
    run = subprocess.run([sys.executable, "-c", FORK_SCRIPT.replace("{start}", start)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.stdout.strip() == expected, run.stderr


def test_an_exception_of_the_unwinding_after_sigterm_exits_143(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a Z3 call the signal's exception turns into ctypes.ArgumentError: terminated, not a crash (exit 4)."""
    from click.testing import CliRunner

    from pcpuverify import cli

    def z3_call_signalled(path: str) -> None:
        termination.RECEIVED.set()
        raise ctypes.ArgumentError("argument 2: Terminated: ")

    monkeypatch.setattr(cli, "load_trace", z3_call_signalled)
    result = CliRunner().invoke(cli.main, ["replay", str(HINT_OVERLAP)])
    assert result.exit_code == cli.EXIT_TERMINATED, result.output
    assert "terminated" in result.stderr and "internal error" not in result.stderr


# -- a signal during a native solver call ------------------------------------------------------------------

SOLVING_SCRIPT = textwrap.dedent("""
    import multiprocessing, os, signal, sys, threading, time
    import z3
    from pcpuverify.proofs.backends import Limits
    from pcpuverify.proofs.solver import in_turn
    from pcpuverify.proofs.termination import Terminated, sigterm_raises

    # two 41-bit factors of a product of primes near 2**40: no solver here answers within a minute
    x, y = z3.BitVec("x", 96), z3.BitVec("y", 96)
    query = [x * y == 1099511627791 * 1099511627689, z3.ULT(x, 2**41), z3.ULT(y, 2**41), z3.UGT(x, 1), z3.UGT(y, 1)]
    signal.signal(signal.SIGINT, {sigint})  # as a terminal leaves it, or as a parent that ignores it does
    threading.Timer(2, os.kill, (os.getpid(), signal.{signal})).start()
    start = time.monotonic()
    try:
        with sigterm_raises():
            outcome = in_turn(["{solver}"], query, Limits(2**32 - 1, 0, {limit})).winner
        print(outcome.status, round(time.monotonic() - start), len(multiprocessing.active_children()))
    except (Terminated, KeyboardInterrupt) as e:
        print(type(e).__name__, round(time.monotonic() - start), len(multiprocessing.active_children()))
""")

SOLVERS = ["bitwuzla", "z3", "cvc5"]


def solving(solver: str, signal_name: str, sigint: str, limit: int) -> tuple[str, int, int, str]:
    """What the script printed (the exception raised, or the solver's answer), after how many seconds, with how
    many child processes left; stderr."""
    script = (SOLVING_SCRIPT.replace("{solver}", solver).replace("{signal}", signal_name)
              .replace("{sigint}", sigint).replace("{limit}", str(limit)))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=100, check=False)
    name, seconds, children = run.stdout.split()
    return name, int(seconds), int(children), run.stderr


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("signal_name", "raised"), [("SIGTERM", "Terminated"), ("SIGINT", "KeyboardInterrupt")])
def test_a_signal_stops_a_solver_call_at_once(solver: str, signal_name: str, raised: str) -> None:
    """Each solver returns within seconds, not at its 120 s limit, and the signal's own exception is raised:
    Bitwuzla polls for the signal, Z3 is interrupted, cvc5's child is killed.  Before: the signal waited for
    the call, up to ``--timeout``; and Z3 took Ctrl-C itself and answered unknown, so the Ctrl-C was lost."""
    name, seconds, children, stderr = solving(solver, signal_name, "signal.default_int_handler", 120)
    assert (name, seconds <= 5, children) == (raised, True, 0), (name, seconds, stderr)
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("solver", SOLVERS)
def test_an_ignored_signal_does_not_cut_a_solver_call_short(solver: str) -> None:
    """A process that ignores SIGINT (a job started with ``&`` does, and its children) solves to its limit:
    unknown at 6 s (before, Z3 took the SIGINT itself and answered unknown at once)."""
    name, seconds, children, stderr = solving(solver, "SIGINT", "signal.SIG_IGN", 6)
    assert (name, seconds >= 5, children) == ("unknown", True, 0), (name, seconds, stderr)


@pytest.mark.parametrize("sigint", [signal.default_int_handler, signal.SIG_IGN])
def test_polled_signals_restores_the_handlers_and_delivers_nothing_when_none_came(sigint: Any) -> None:
    """SIGTERM is taken over for the call; SIGINT too, unless the process ignores it (as a job started in the
    background with ``&`` does)."""
    outer = signal.signal(signal.SIGINT, sigint)
    try:
        before = {s: signal.getsignal(s) for s in termination.POLLED}
        with termination.polled_signals() as signalled:
            assert not signalled()
            taken = {s for s in termination.POLLED if signal.getsignal(s) is not before[s]}
        assert taken == ({signal.SIGTERM} if sigint is signal.SIG_IGN else set(termination.POLLED))
        assert {s: signal.getsignal(s) for s in termination.POLLED} == before
        assert not termination.RECEIVED.is_set()
    finally:
        signal.signal(signal.SIGINT, outer)


CLOSING_SCRIPT = textwrap.dedent("""
    import os, signal, threading, time
    import z3
    from pcpuverify.model.geometry import Geometry
    from pcpuverify.proofs.block_states import block_terms, chunk_md_terms, close
    from pcpuverify.proofs.termination import Terminated, sigterm_raises
    from pcpuverify.symbolic.subjects import subject

    enc = subject("mainline").require_encoding()(Geometry.parse("1x4"))
    pre, post = enc.fresh_chunk("pre"), enc.fresh_chunk("post")
    x, y = z3.BitVec("x", 96), z3.BitVec("y", 96)
    hard = [x * y == 1099511627791 * 1099511627689, z3.ULT(x, 2**41), z3.ULT(y, 2**41), z3.UGT(x, 1), z3.UGT(y, 1)]
    # one state in each set; a post-state outside them is easy, with the factors hard: the first query is long
    seeds = {(0,) * len(block_terms(pre, 0))}, {(0,) * len(chunk_md_terms(pre))}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal leaves it; a job started with & ignores it
    threading.Timer(2, os.kill, (os.getpid(), signal.{signal})).start()
    start = time.monotonic()
    try:
        with sigterm_raises():
            closure = close(pre, {"alloc": (hard, post)}, *seeds, 100, 120.0)
        print(closure.failed.replace(" ", "_"), round(time.monotonic() - start))
    except (Terminated, KeyboardInterrupt) as e:
        print(type(e).__name__, round(time.monotonic() - start))
""")


@pytest.mark.parametrize(("signal_name", "raised"), [("SIGTERM", "Terminated"), ("SIGINT", "KeyboardInterrupt")])
def test_a_signal_stops_the_closed_sets_growing_at_once(signal_name: str, raised: str) -> None:
    """``block_states.close`` asks its own incremental Bitwuzla: it too polls for the signal and returns at once.
    Before: the signal waited for the enumeration query, up to ``--timeout`` (here its 120 s limit)."""
    run = subprocess.run([sys.executable, "-c", CLOSING_SCRIPT.replace("{signal}", signal_name)],
                         capture_output=True, text=True, timeout=200, check=False)
    name, seconds = run.stdout.split()
    assert (name, int(seconds) <= 5) == (raised, True), (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
