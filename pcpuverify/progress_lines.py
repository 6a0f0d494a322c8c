"""``prove``'s progress in a log, where a spinner shows nothing: one stderr line per finished group."""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console

from pcpuverify.proofs.initiation import OP as FIRST_CHUNK_OP
from pcpuverify.proofs.results import Result


class ProgressLines:
    """Progress for a log, where the spinner shows nothing: one stderr line per finished group of obligations.

    A group is an invariant's obligations in a suite, or one operation's for every invariant (the
    initial-state rows, which the suite proves first), or a layout suite.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.start = time.monotonic()
        self.group = ""
        self.counts: Counter[str] = Counter()
        self.done = 0
        self.where = ""  # how far the suite of the open group is

    def add(self, suite: str, total: int, r: Result) -> None:
        what = f"{r.op} (every invariant)" if r.op in ("init", FIRST_CHUNK_OP) else r.invariant
        group = f"{suite}: {what}"
        if group != self.group:
            self.flush()
            self.group = group
        self.counts[r.verdict.value] += 1
        self.done += 1
        self.where = f"{self.done} of {total} in {suite}"

    def suite_done(self) -> None:
        self.flush()
        self.done = 0

    def flush(self) -> None:
        if self.counts:
            self.line(self.group, self.counts, self.where)
            self.counts = Counter()

    def line(self, group: str, counts: Counter[str], where: str) -> None:
        seconds = int(time.monotonic() - self.start)
        verdicts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        self.console.print(f"prove: {group}: {verdicts} [{where}; {seconds // 60}m{seconds % 60:02d}s elapsed]",
                           highlight=False, soft_wrap=True)
