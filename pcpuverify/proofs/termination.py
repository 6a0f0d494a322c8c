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
"""

from __future__ import annotations

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
