"""One block contract to a verdict: the vacuity check, the query, and the replay of a counterexample on the model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import z3

from pcpuverify.proofs.blocks.contracts import CONTRACTS, Args, Contract, Query, build_query
from pcpuverify.proofs.blocks.labels import block_label
from pcpuverify.proofs.blocks.roles import run_on_model
from pcpuverify.proofs.blocks.state import concrete_block, signed
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import Answer, SolverOptions, check


def _result(variant: str, contract: Contract, block_bits: int, verdict: Verdict, started: float, detail: str = "",
            answers: Iterable[Answer] = (), **extra: object) -> Result:
    solved = [a for a in answers]
    info: dict[str, object] = dict(extra)
    if solved:
        info.update(solved[-1].to_json())
        info["vacuity"] = solved[0].to_json() if len(solved) > 1 else None
    return Result(variant, block_label(block_bits), contract.name, contract.role.name, verdict,
                  time.perf_counter() - started, detail, extra={k: v for k, v in info.items() if v is not None})


def concrete_args(model: z3.ModelRef, q: Query) -> Args:
    return Args(signed(model, q.area.lo), signed(model, q.area.hi), signed(model, q.align), signed(model, q.size))


def prove_contract(variant: str, contract: Contract, block_bits: int, options: SolverOptions) -> Result:
    """PROVED only on unsat with a satisfiable precondition; a sat is replayed on the model before it counts."""
    started = time.perf_counter()
    q = build_query(variant, contract.role, block_bits)
    pre = contract.pre(q)
    vacuity = check([pre], options)
    if vacuity.status == "unsat":
        return _result(variant, contract, block_bits, Verdict.VACUOUS, started,
                       "the precondition is unsatisfiable", [vacuity])
    if vacuity.status != "sat":
        return _result(variant, contract, block_bits, Verdict.UNKNOWN, started,
                       f"vacuity check: {vacuity.reason}", [vacuity])
    answer = check([pre, z3.Not(contract.post(q))], options)
    if answer.status == "unsat":
        return _result(variant, contract, block_bits, Verdict.PROVED, started, "", [vacuity, answer])
    if answer.status != "sat" or answer.model is None:
        return _result(variant, contract, block_bits, Verdict.UNKNOWN, started, answer.reason, [vacuity, answer])
    return _replayed(variant, contract, q, answer, vacuity, started)


def _replayed(variant: str, contract: Contract, q: Query, answer: Answer, vacuity: Answer,
              started: float) -> Result:
    """The solver's block, replayed: VIOLATED when the model breaks the postcondition from a block that meets the pre."""
    assert answer.model is not None
    before = concrete_block(answer.model, q.pre)
    args = concrete_args(answer.model, q)
    unmet = contract.holds_before(before, args)
    after = run_on_model(variant, contract.role, before, args.lo, args.hi)
    broken = contract.broken_after(before, after, args)
    where = f"before: {before.describe()}; area [{args.lo}, {args.hi})"
    if contract.role.kind == "read":
        where += f"; align {args.align}, bit_size {args.size}"
    found = {"block": before.to_json(), "after": after.to_json(), "area": [args.lo, args.hi]}
    if unmet or not broken:
        why = f"the block breaks the precondition on the model ({'; '.join(unmet)})" if unmet else \
            "the model keeps the postcondition"
        return _result(variant, contract, q.block_bits, Verdict.SPURIOUS, started, f"{why}: {where}",
                       [vacuity, answer], counterexample=found)
    return _result(variant, contract, q.block_bits, Verdict.VIOLATED, started,
                   f"{'; '.join(broken)}; {where}; after: {after.describe()}", [vacuity, answer],
                   counterexample=found)


def run_block_suite(variant: str, block_bits: int, options: SolverOptions,
                    wanted: frozenset[str] | None = None, ops: frozenset[str] | None = None,
                    progress: Callable[[Result], None] | None = None) -> list[Result]:
    """Every block contract of ``variant`` at ``block_bits`` bits per block (``wanted``/``ops``: a selection)."""
    results = []
    for contract in CONTRACTS:
        if wanted is not None and contract.name not in wanted:
            continue
        if ops is not None and contract.role.name not in ops and contract.role.function not in ops:
            continue
        results.append(prove_contract(variant, contract, block_bits, options))
        if progress is not None:
            progress(results[-1])
    return results
