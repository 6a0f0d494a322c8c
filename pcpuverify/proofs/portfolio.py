"""Many queries, several solvers each, in forked worker processes: the first definite answer per query wins.

A task is one (query, solver).  At most ``jobs`` children run at once, taken
solver by solver: every query's first solver, then the second solver of the
queries still open, and so on.  So a batch of at least ``jobs`` queries
keeps every core on the strongest solver and the others are a fallback for
its unknowns, while a batch smaller than ``jobs`` (one bounded-model-checking
query, say) races the solvers on the spare cores.  A child is forked after the parent has translated its query (the memo
of ``translate`` stays in the parent and serves the next queries), solves,
and sends back an ``Outcome`` of plain values.

An unsat or a sat from any solver settles the query, and its remaining
tasks are dropped (running ones killed).  An unknown settles nothing while
another solver of the query may still answer; a query all of whose solvers
said unknown is unknown, with every solver's reason.  A child that dies
without answering counts as that solver's unknown.  A solver cut short by
another's answer is listed with the status ``cut`` and the time it ran.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

import z3

from pcpuverify.proofs.backends import Limits, Outcome, prepare, solve
from pcpuverify.proofs.children import FORK, release_signals, start, watch_parent
from pcpuverify.proofs.termination import stop_if_terminated


@dataclass
class Settled:
    """A query's answer, and every solver's outcome for it: answers in the order they came, then those cut."""

    winner: Outcome
    outcomes: list[Outcome]


@dataclass
class Task:
    query: int
    solver: str
    proc: mp.process.BaseProcess
    start: float


def _child(conn: Connection, solver: str, assertions: list[z3.BoolRef], limits: Limits, parent: int) -> None:
    release_signals()
    watch_parent(parent)
    try:
        conn.send(solve(solver, assertions, limits))
    except BaseException as e:  # an exception is the solver's unknown, reported, never a pass
        conn.send(Outcome(solver, "unknown", 0.0, reason=f"{solver} failed: {type(e).__name__}: {e}"))
    finally:
        conn.close()


def race(queries: Sequence[list[z3.BoolRef]], solvers: Sequence[str], limits: Limits, jobs: int) -> list[Settled]:
    """Each query's first definite answer among ``solvers``, solved ``jobs`` children at a time."""
    pending = [(q, s) for s in solvers for q in range(len(queries))]
    running: dict[Connection, Task] = {}
    outcomes: dict[int, list[Outcome]] = {q: [] for q in range(len(queries))}
    settled: dict[int, Settled] = {}
    try:
        while pending or running:
            while pending and len(running) < max(jobs, 1):
                q, s = pending.pop(0)
                prepare(s, queries[q])
                parent_end, child_end = FORK.Pipe(duplex=False)
                proc = FORK.Process(target=_child, args=(child_end, s, queries[q], limits, os.getpid()), daemon=True)
                start(proc)
                child_end.close()
                running[parent_end] = Task(q, s, proc, time.perf_counter())
            for conn in wait(list(running)):
                stop_if_terminated()
                if conn not in running:  # a sibling of a query settled earlier in this loop: killed
                    continue
                task = running.pop(conn)  # type: ignore[arg-type]
                q, s, proc = task.query, task.solver, task.proc
                try:
                    outcome: Outcome = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    outcome = Outcome(s, "unknown", 0.0, reason=f"{s}: worker {proc.pid} died without answering")
                conn.close()  # type: ignore[union-attr]
                proc.join()
                if q in settled:
                    continue
                outcomes[q].append(outcome)
                if outcome.status in ("sat", "unsat"):
                    settled[q] = Settled(outcome, outcomes[q])
                    outcomes[q].extend(_drop(q, pending, running))
                elif len(outcomes[q]) == len(solvers):
                    reason = "; ".join(o.reason for o in outcomes[q])
                    settled[q] = Settled(Outcome("+".join(solvers), "unknown", max(o.seconds for o in outcomes[q]),
                                                 reason=reason), outcomes[q])
    finally:
        for task in running.values():
            task.proc.kill()
            task.proc.join()
    return [settled[q] for q in range(len(queries))]


def _drop(q: int, pending: list[tuple[int, str]], running: dict[Connection, Task]) -> list[Outcome]:
    """Forget a settled query's other tasks: pending ones are removed, running ones killed and listed as cut."""
    pending[:] = [t for t in pending if t[0] != q]
    cut = []
    for conn, task in list(running.items()):
        if task.query == q:
            task.proc.kill()
            task.proc.join()
            conn.close()
            del running[conn]
            cut.append(Outcome(task.solver, "cut", time.perf_counter() - task.start))
    return cut
