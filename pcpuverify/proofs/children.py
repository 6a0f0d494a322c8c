"""Forked child processes that never outlive their parent: the parent watch, and functions run in children.

Every process the proofs fork (a solver task of ``portfolio.py``, a share
of a suite's independent work here) starts ``watch_parent`` first.  A
parent that stops them in order (an exception, Ctrl-C, SIGTERM turned into
an exception by the command line) kills them in a ``finally``; a parent
that cannot (SIGKILL, a crash) is noticed by the watch, and the child
leaves too.  ``check``'s worker processes start the same watch.

A child is forked, not spawned: it inherits the parent's Z3 terms, and
sends back plain values (pickled), never a solver object.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.util  # its exit handler (which joins live children) registered before ours, so runs after
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Generic, TypeVar

from pcpuverify.proofs.termination import stop_if_terminated

T = TypeVar("T")

FORK = mp.get_context("fork")

# Every child not yet collected.  A SIGTERM can land between a fork and the bookkeeping that would kill the
# child in a ``finally``; at exit multiprocessing would then wait for it to finish its work.  Killed first.
_LIVE: set[mp.process.BaseProcess] = set()

# The signals the command line turns into exceptions.  Held (blocked) while a child is forked: delivered
# during the fork, the exception would be raised in an at-fork hook (logging's lock release), where Python
# only prints it ("Exception ignored in ...") and the command runs on.  Delivered once the fork is over.
HELD_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def start(proc: mp.process.BaseProcess) -> None:
    """``proc.start()`` with ``HELD_SIGNALS`` held; the child releases them first (``release_signals``)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def release_signals() -> None:
    """In a child forked by ``start``: the signal mask it inherited, with ``HELD_SIGNALS`` deliverable again.

    SIGTERM goes back to its default first: the handler the child inherited would raise ``Terminated`` in it,
    and multiprocessing prints a child's exception as a traceback.  A child gets SIGTERM only when it is being
    stopped (multiprocessing terminates the daemon children still running at exit: a portfolio task forked just
    before the parent's own SIGTERM landed), so it should simply end.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


@atexit.register
def _kill_left_behind() -> None:
    for proc in list(_LIVE):
        if proc.pid is not None and proc.is_alive():
            proc.kill()
            proc.join()
    _LIVE.clear()


def watch_parent(parent: int) -> None:
    """Leave (killed) as soon as ``parent`` is gone: a daemon thread polls twice a second.

    Polled rather than PR_SET_PDEATHSIG, which fires when the parent's *thread*
    that forked us ends, and is Linux only.
    """
    threading.Thread(target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:  # reparented (to init or a subreaper) once the parent is gone
        time.sleep(0.5)
    # No cleanup to do: the parent writes every file, and it is gone.  SIGKILL, not SIGTERM: no handler a
    # child inherited runs (it would wait for the solver to return to Python), and nobody reads the status.
    os.kill(os.getpid(), signal.SIGKILL)


class ChildFailed(RuntimeError):
    """A child raised: its traceback, re-raised in the parent (a crash of the tool, never a verdict)."""


class Child(Generic[T]):
    """``fn()`` computed in a forked child; ``result()`` waits for its value."""

    def __init__(self, fn: Callable[[], T]) -> None:
        parent = os.getpid()
        self.conn, child_end = FORK.Pipe(duplex=False)
        # not a daemon: a daemon may not fork, and a suite's child runs the portfolio's solver children
        self.proc = FORK.Process(target=_run, args=(child_end, fn, parent))
        _LIVE.add(self.proc)
        start(self.proc)
        child_end.close()

    def result(self) -> T:
        try:
            ok, value = self.conn.recv()
        except EOFError:
            raise ChildFailed(f"child {self.proc.pid} died without answering (exit code {self.proc.exitcode})")\
                from None
        except BaseException:  # Ctrl-C or SIGTERM while waiting: the child is not waited for
            self.proc.kill()
            raise
        finally:
            self.conn.close()
            self.proc.join()
            _LIVE.discard(self.proc)
        if not ok:
            raise ChildFailed(value)
        return value  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()
        _LIVE.discard(self.proc)


def _run(conn: Connection, fn: Callable[[], object], parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C: it kills us and writes nothing half-done
    release_signals()
    watch_parent(parent)
    try:
        conn.send((True, fn()))
    except BaseException:  # reported to the parent, which raises it there
        conn.send((False, traceback.format_exc()))
    finally:
        conn.close()


def run_all(fns: Sequence[Callable[[], T]], jobs: int, settled: Callable[[int, T], None] | None = None) -> list[T]:
    """Each of ``fns`` in a child, at most ``jobs`` at once; ``settled(i, value)`` as each ends; the values in order.

    With ``jobs`` 1 they run here, in turn, with no fork.  On any exception
    (a child's, Ctrl-C) the children still running are killed before it
    propagates.
    """
    done = settled or (lambda i, value: None)
    values: dict[int, T] = {}
    if jobs <= 1:
        for i, fn in enumerate(fns):
            stop_if_terminated()
            values[i] = fn()
            done(i, values[i])
        return [values[i] for i in range(len(fns))]
    pending = list(range(len(fns)))
    running: dict[Connection, tuple[int, Child[T]]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i = pending.pop(0)
                child = Child(fns[i])
                running[child.conn] = (i, child)
            for conn in wait(list(running)):
                stop_if_terminated()
                i, child = running.pop(conn)  # type: ignore[arg-type]
                values[i] = child.result()
                done(i, values[i])
    finally:
        for _, child in running.values():
            child.kill()
    return [values[i] for i in range(len(fns))]


class Later(Generic[T]):
    """``fn``'s value: computed in a child from now on (``background``), else here when first asked for."""

    def __init__(self, fn: Callable[[], T], background: bool) -> None:
        self.fn = fn
        self.background = background
        self.child: Child[T] | None = Child(fn) if background else None
        self.values: list[T] = []

    def result(self) -> T:
        if not self.values:
            self.values.append(self.child.result() if self.child is not None else self.fn())
            self.child = None
        return self.values[0]

    def cancel(self) -> None:
        """Kill the child if it is still computing (the value is no longer wanted)."""
        if self.child is not None:
            self.child.kill()
            self.child = None
