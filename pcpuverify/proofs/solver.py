"""Solver queries, bounded deterministically by default: a fixed solver, seed and resource limit.

``SolverOptions.solver`` names Z3, Bitwuzla, cvc5 or ``portfolio`` (all
three, ``proofs/portfolio.py``).  Z3 and cvc5 alone are the
deterministic mode: their resource limits give the same verdict on every
machine.  Bitwuzla has only a wall-clock limit and the portfolio answers
with whichever solver is first, so their *unknowns* can differ between
machines; their sat and unsat answers cannot (a sat is replayed on
``model/`` by the suite before it counts, an unsat is final).  How each
solver's limits are set: ``proofs/backends.py``.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import z3

from pcpuverify.proofs.backends import DETERMINISTIC, SOLVERS, Limits, Outcome, solve, z3_model
from pcpuverify.proofs.portfolio import Settled, race

SOLVER_CHOICES = (*SOLVERS, "portfolio")
# the portfolio's order, strongest first (bench/bench_proofs.py): Bitwuzla answered the suite's queries fastest
PORTFOLIO = ("bitwuzla", "z3", "cvc5")
UNINTERRUPTIBLE = ("cvc5",)  # no poll, no interrupt: solved in a child where a signal could come


# Z3 reads rlimit, random_seed and timeout (in ms) as unsigned 32-bit ints and silently wraps larger ones:
# an rlimit of 2**32 becomes 0, no limit at all.  The command line and the config refuse what does not fit.
MAX_RLIMIT = 2**32 - 1
MAX_SEED = 2**32 - 1
MIN_TIMEOUT = 0.001  # seconds: int(timeout * 1000) below a millisecond is 0, no timeout at all
MAX_TIMEOUT = (2**32 - 1) / 1000


@dataclass(frozen=True)
class SolverOptions:
    # Resource units per query (Z3's; cvc5 reads the same number in its own units): the same verdict on
    # every machine.  About 4.6M Z3 units a second here; the deepest bounded check at 2x8 takes 78M.
    rlimit: int = 2_000_000_000
    seed: int = 0
    timeout: float = 900.0  # seconds; a safety net only (Bitwuzla's only limit)
    solver: str = "z3"
    # worker processes for a batch of independent queries; 1: solved here, one by one, the solvers in turn.
    # On this 2-core machine, shared, more workers helped Z3 alone (x1.4) and slowed Bitwuzla (bench_proofs.py)
    jobs: int = 1

    def __post_init__(self) -> None:
        if self.solver not in SOLVER_CHOICES:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of {', '.join(SOLVER_CHOICES)}")

    @property
    def deterministic(self) -> bool:
        return self.solver in DETERMINISTIC

    @property
    def solvers(self) -> tuple[str, ...]:
        return PORTFOLIO if self.solver == "portfolio" else (self.solver,)

    @property
    def limits(self) -> Limits:
        return Limits(self.rlimit, self.seed, self.timeout)

    def to_json(self) -> dict[str, float | int | str]:
        # jobs is left out: it changes how long a suite takes, never a verdict
        return {"rlimit": self.rlimit, "seed": self.seed, "timeout": self.timeout, "solver": self.solver}


@dataclass
class Answer:
    status: str  # "sat", "unsat" or "unknown"
    seconds: float
    model: z3.ModelRef | None = None
    reason: str = ""
    solver: str = "z3"  # who answered
    times: dict[str, dict[str, object]] = field(default_factory=dict)  # every solver tried: status, seconds

    def to_json(self) -> dict[str, object]:
        """What ``Result.extra`` carries about the solvers of one query."""
        return {"solver": self.solver, "solvers": self.times}


def _answer(settled: Settled) -> Answer:
    w = settled.winner
    return Answer(
        w.status,
        w.seconds,
        z3_model(w.values) if w.status == "sat" else None,
        w.reason,
        w.solver,
        {o.solver: {"status": o.status, "seconds": round(o.seconds, 3)} for o in settled.outcomes},
    )


def check_all(queries: Sequence[list[z3.BoolRef]], options: SolverOptions) -> list[Answer]:
    """Is each conjunction satisfiable?  Independent queries, so they may be solved in parallel."""
    if options.jobs <= 1:
        return [_answer(in_turn(options.solvers, q, options.limits)) for q in queries]
    return [_answer(s) for s in race(queries, options.solvers, options.limits, options.jobs)]


def check(assertions: list[z3.BoolRef], options: SolverOptions) -> Answer:
    """Is the conjunction of ``assertions`` satisfiable?  ``unknown`` carries the solvers' reasons."""
    return check_all([assertions], options)[0]


def in_turn(solvers: Sequence[str], assertions: list[z3.BoolRef], limits: Limits) -> Settled:
    """One worker: each solver in turn until one answers sat or unsat.

    Each solves in this process, except cvc5 where a signal can reach it: it can be neither polled nor
    interrupted (``termination.py``), so it solves in a forked child, killed on SIGTERM or Ctrl-C, which would
    otherwise wait until the query returned (up to ``--timeout``).
    """
    outcomes: list[Outcome] = []
    for solver in solvers:
        outcomes.append(race([assertions], (solver,), limits, 1)[0].winner if solver in UNINTERRUPTIBLE
                        and _signals_arrive() else solve(solver, assertions, limits))
        if outcomes[-1].status in ("sat", "unsat"):
            return Settled(outcomes[-1], outcomes)
    if len(outcomes) == 1:
        return Settled(outcomes[0], outcomes)
    return Settled(Outcome("+".join(solvers), "unknown", sum(o.seconds for o in outcomes),
                           reason="; ".join(o.reason for o in outcomes)), outcomes)


def _signals_arrive() -> bool:
    """Whether this thread is where signals are handled, and may fork: the main thread of a process that is not
    a daemon (the portfolio's solver children are, and are killed by their parent)."""
    return threading.current_thread() is threading.main_thread() and not mp.current_process().daemon
