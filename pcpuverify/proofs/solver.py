"""One solver query, bounded deterministically: Z3's resource limit and a fixed seed, wall clock only as a net."""

from __future__ import annotations

import time
from dataclasses import dataclass

import z3


# Z3 reads rlimit, random_seed and timeout (in ms) as unsigned 32-bit ints and silently wraps larger ones:
# an rlimit of 2**32 becomes 0, no limit at all.  The command line and the config refuse what does not fit.
MAX_RLIMIT = 2**32 - 1
MAX_SEED = 2**32 - 1
MIN_TIMEOUT = 0.001  # seconds: int(timeout * 1000) below a millisecond is 0, no timeout at all
MAX_TIMEOUT = (2**32 - 1) / 1000


@dataclass(frozen=True)
class SolverOptions:
    # Z3 resource units per query: the same verdict on every machine.  About
    # 4.6M units a second here; the deepest bounded check at 2x8 takes 78M.
    rlimit: int = 2_000_000_000
    seed: int = 0
    timeout: float = 900.0  # seconds; a safety net only

    def to_json(self) -> dict[str, float | int]:
        return {"rlimit": self.rlimit, "seed": self.seed, "timeout": self.timeout}


@dataclass
class Answer:
    status: str  # "sat", "unsat" or "unknown"
    seconds: float
    model: z3.ModelRef | None = None
    reason: str = ""


def check(assertions: list[z3.BoolRef], options: SolverOptions) -> Answer:
    """Is the conjunction of ``assertions`` satisfiable?  ``unknown`` carries Z3's reason."""
    solver = z3.SolverFor("QF_BV")
    solver.set("rlimit", options.rlimit)
    solver.set("random_seed", options.seed)
    solver.set("timeout", int(options.timeout * 1000))
    solver.add(*assertions)
    start = time.perf_counter()
    status = solver.check()
    seconds = time.perf_counter() - start
    if status == z3.sat:
        return Answer("sat", seconds, solver.model())
    if status == z3.unsat:
        return Answer("unsat", seconds)
    return Answer("unknown", seconds, reason=solver.reason_unknown())
