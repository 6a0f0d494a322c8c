"""The driver process: commands in, replies out, over a pipe; a sanitizer report ends it and is kept.

Why a process and not cffi.  AddressSanitizer must own the process's
allocator from its first instruction: a sanitized cffi module loaded into
CPython needs ``LD_PRELOAD`` of libasan for the whole interpreter, where
ASan then also watches CPython's own allocations, and its first report
aborts the interpreter -- the verifier would die with the finding.
Measured here (gcc 12): the same translation unit built as a shared
library and loaded with ctypes into a CPython started with
``LD_PRELOAD=libasan.so`` runs, and the v1 posting's one-op overflow
(``alloc bits=1 align=1 pop_only`` on a chunk whose page 0 is not
populated) prints its report and ends the interpreter with status 1.  A
small driver executable (shim/driver.c) keeps the sanitizers on the
kernel's code alone, and a report ends only the driver: its stderr is the
finding of the step the driver was on, and a fresh driver carries on.
Commands are sent in batches (one write, then the replies are read), and
the driver flushes its replies once per batch (``F``), so the pipe costs
one round trip per batch, not per operation; the driver's sanitizer death
callback flushes the replies before a report, which then tells the step.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

BATCH = 2048  # commands per write (< 32 bytes each): their bytes stay far below a pipe's buffer, so writing never blocks
# redzone=2048: the widest redzones ASan offers, so that an access far past a small map (PATCH 09's
# pcpu_is_populated sends the search blocks beyond the chunk) lands in a redzone, not in the next allocation
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:exitcode=86:redzone=2048",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
}


@dataclass(frozen=True)
class Crash:
    """The driver ended during a command: which one (index in the batch), its exit status and its stderr."""

    index: int
    returncode: int | None
    report: str

    def summary(self) -> str:
        return summarize(self.report) or f"driver exited with status {self.returncode}"


def summarize(report: str) -> str:
    """A sanitizer report's one-line verdict (``SUMMARY: ...`` or the ``runtime error`` line), else its first line.

    With the innermost frame of the kernel's own code, when the stack names one ("in FUNC mm/percpu.c:LINE").
    """
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    verdict = next((hit for marker in ("runtime error", "SUMMARY:", "ERROR:")
                    for hit in lines if marker in hit), lines[0] if lines else "")
    frame = next((line for line in lines if line.startswith("#") and "mm/percpu.c:" in line), None)
    if frame and "mm/percpu.c:" not in verdict:
        verdict += " (" + frame.split(" in ", 1)[-1] + ")"
    return verdict


class DriverProcess:
    """One running driver executable."""

    def __init__(self, executable: Path, symbolize: bool = True) -> None:
        """``symbolize=False``: reports name addresses, not source lines (16 ms a report instead of ~170 ms)."""
        env = {**os.environ, **SANITIZER_ENV}
        if not symbolize:
            env["ASAN_OPTIONS"] += ":symbolize=0"
            env["UBSAN_OPTIONS"] += ":symbolize=0"
        self.proc = subprocess.Popen(
            [str(executable)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, env=env,
        )

    def run(self, commands: list[str]) -> tuple[list[str], Crash | None]:
        """Send ``commands``; their replies, and the crash that cut them short (None if none)."""
        replies: list[str] = []
        for start in range(0, len(commands), BATCH):
            batch = commands[start:start + BATCH]
            assert self.proc.stdin is not None and self.proc.stdout is not None
            try:
                self.proc.stdin.write("".join(c + "\n" for c in batch) + "F\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                return replies, self._crash(len(replies))
            for _ in batch:
                line = self.proc.stdout.readline()
                if not line:
                    return replies, self._crash(len(replies))
                replies.append(line.rstrip("\n"))
        return replies, None

    def _crash(self, index: int) -> Crash:
        assert self.proc.stderr is not None
        report = self.proc.stderr.read()
        returncode = self.proc.wait()
        return Crash(index, returncode, report)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
