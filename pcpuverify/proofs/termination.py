"""SIGTERM (a CI job cancelled) as an exception that unwinds like Ctrl-C: children killed, nothing half-written.

The handler raises ``Terminated`` in the main thread at once, so that a
long Python computation stops where it is.  Where it lands is not ours to
choose, and in three places Python cannot raise it:

- a destructor (Z3's ``AstRef.__del__``, run by the garbage collector) or an
  at-fork hook (logging's lock release): Python prints "Exception ignored in
  ..." and runs on;
- inside a ctypes call (every Z3 call): the exception becomes a
  ``ctypes.ArgumentError``.

So the handler also sets ``RECEIVED``.  From then on ``sigterm_raises``
silences what destructors raise (the signal itself, or an object it cut
short, e.g. a Z3 term without its context, collected); the loops that wait
for children and each settled row call ``stop_if_terminated`` and raise it
again; and the command line exits 143 on any exception once ``RECEIVED`` is
set.  Forks hold the signal off altogether (``children.start``).

A native solver call holds the main thread until it returns: a signal's
Python handler runs only then, up to ``--timeout`` later.  So each solver is
made to return at once:

- Bitwuzla polls a callback as it works; within ``polled_signals`` SIGTERM
  and SIGINT are only noted, the poll sees them and the solver returns, and
  the noted signal is then raised as its own handler would have.
- Z3 can be interrupted from another thread; within ``interrupting``, a
  watcher thread reads the signal numbers that Python's C-level handler
  writes to a wakeup fd (it does so while the main thread is held) and
  interrupts the query.  Z3's own Ctrl-C handling must be off (its
  ``ctrl_c`` parameter): it catches SIGINT itself and returns "unknown",
  and the Ctrl-C is lost.
- cvc5 has neither: it is solved in a child process (``solver.in_turn``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt, so that it unwinds the same way."""


RECEIVED = threading.Event()

def _raise_terminated(signum: int, frame: object) -> None:
    RECEIVED.set()
    raise Terminated()


def stop_if_terminated() -> None:
    """Raise ``Terminated`` if SIGTERM came and its exception was lost where it landed."""
    if RECEIVED.is_set():
        raise Terminated()


def stopping() -> bool:
    """Whether the exception being handled is Ctrl-C or SIGTERM, or what SIGTERM left where it landed."""
    return isinstance(sys.exc_info()[1], (KeyboardInterrupt, Terminated)) or RECEIVED.is_set()


def _quiet_when_terminated(default: Callable[[Any], object]) -> Callable[[Any], object]:
    def hook(unraisable: Any) -> None:
        if RECEIVED.is_set():  # ending on SIGTERM: its own exception, landed here, or the debris of what it cut short
            return
        default(unraisable)

    return hook


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within: SIGTERM raises ``Terminated``; after one, destructors' exceptions are not printed as faults
    (nor at the exit that follows, when the rest is collected)."""
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_when_terminated(previous_hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        if not RECEIVED.is_set():
            sys.unraisablehook = previous_hook


POLLED = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def polled_signals() -> Iterator[Callable[[], bool]]:
    """Within: SIGTERM and SIGINT are noted, and the callable yielded says whether one came; on leaving, the
    first noted one is delivered to the handler it would have met (``Terminated``, ``KeyboardInterrupt``, or
    the default action).

    For a native call that polls (Bitwuzla's terminator): a handler that raised
    inside the poll would have its exception printed and dropped by the solver's
    binding, and the solver would run on.  A signal the process ignores stays
    ignored (a job started in the background with ``&`` ignores SIGINT, and
    so do its children): it must not cut a query short.  Outside the main thread, where
    handlers cannot be set, nothing is noted.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    noted: list[int] = []

    def note(signum: int, frame: object) -> None:
        noted.append(signum)

    previous = {s: signal.signal(s, note) for s in POLLED if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield lambda: bool(noted)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if noted:
            _deliver(noted[0], previous[noted[0]])


def _deliver(signum: int, handler: object) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)  # the default action, as if it had come now


@contextmanager
def interrupting(interrupt: Callable[[], None]) -> Iterator[None]:
    """Within: SIGTERM or SIGINT, where this process handles it, calls ``interrupt`` (from a watcher thread)
    while the main thread is held in a native call; the signal's own handler then runs when the call returns.

    Python's C-level handler writes each signal's number to the wakeup fd even while the main thread is held,
    and only for a signal that has a Python handler: a SIGINT the process ignores (a background job) stays
    ignored.  Outside the main thread, where the wakeup fd cannot be set, nothing is watched.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_end, interrupt), name="interrupt-on-signal", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_end)  # the watcher reads the end of the pipe and leaves
        watcher.join()
        os.close(read_end)


def _watch(read_end: int, interrupt: Callable[[], None]) -> None:
    while numbers := os.read(read_end, 64):
        if any(n in POLLED for n in numbers):
            interrupt()
