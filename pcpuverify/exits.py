"""The exit codes of every pcpu-verify command, in one table (the README and docs/design.md show the same).

Exit 1 only ever means that a claim did not hold; a crash of the tool is 4.
"""

from __future__ import annotations

import signal

EXIT_OK = 0  # done; check: every row equals the baseline, nothing UNKNOWN, nothing left unrun
# a claim did not hold: a trace's "violates" did not reproduce; check: a regression against the baseline
# (a new violation, a known one that disappeared, another change of verdict); diff: the C and the model differ
EXIT_VIOLATION = 1
EXIT_USAGE = 2  # bad usage or input: one line on stderr
EXIT_UNDECIDED = 3  # some obligation UNKNOWN (solver limit or timeout), or NOT RUN within check's budget
EXIT_TOOL_FAILURE = 4  # VACUOUS, SPURIOUS or NONCONFORMANT, or a crash (with its traceback)
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C; nothing half-written
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141: the reader of stdout left early (`| head`), as for `cat`
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM (a CI job cancelled), handled as Ctrl-C is
