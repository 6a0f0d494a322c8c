"""One block contract to a verdict: the vacuity check, the query, and the replay of a counterexample on the model."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import z3

from pcpuverify.proofs.blocks.contracts import CONTRACTS, Args, Contract, Query, build_query, conjuncts
from pcpuverify.proofs.blocks.labels import block_label
from pcpuverify.proofs.blocks.roles import run_on_model
from pcpuverify.proofs.blocks.run_lemma import LemmaProof, prove_lemma
from pcpuverify.proofs.blocks.state import concrete_block, signed
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import Answer, SolverOptions, check, check_all


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


def prove_contract(variant: str, contract: Contract, block_bits: int, options: SolverOptions,
                   instantiate: bool = True) -> Result:
    """PROVED only on unsat with a satisfiable precondition; a sat is replayed on the model before it counts.

    Where the contract has a weaker form (``Contract.weak_pre``), the weaker queries of ``instances`` are
    asked first, one per conjunct of the postcondition, named in the row's ``solvers``: all unsat proves the
    contract, and a sat that replays as a violation is one.  Where the function refreshes the block, those
    queries cut its longest-run circuit when ``run_lemma`` proves the lemma at this size (``run_lemma`` in the
    row).  Anything else (a sat the model does not confirm, an unknown) is asked again as the full query, with
    the circuit, whose answer is the row's.  ``instantiate=False`` asks only the full query
    (``bench/bench_proofs.py --blocks`` compares the two).
    """
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
    weak_q, lemma = _weak_query(variant, contract, q, options) if instantiate else (q, None)
    weak = contract.weak_queries(weak_q) if instantiate else None
    if weak is not None:
        how: dict[str, object] = {
            "queries": "instantiated" if lemma is None or not lemma.proved else "instantiated, circuit cut"}
        if lemma is not None:
            how["run_lemma"] = lemma.to_json()
        answers = check_all([query for _, query in weak], options)
        if all(a.status == "unsat" for a in answers):
            named = combined_answer(answers, [name for name, _ in weak])
            return _result(variant, contract, block_bits, Verdict.PROVED, started, "", [vacuity, named], **how)
        found = next((a for a in answers if a.status == "sat" and a.model is not None), None)
        if found is not None:
            replayed = _replayed(variant, contract, weak_q, found, vacuity, started, **how)
            if replayed.verdict is Verdict.VIOLATED:
                return replayed
    parts = conjuncts(contract.post(q))  # one query each: the same proof, cheaper (bench/bench_proofs.py)
    answers = check_all([[pre, z3.Not(part)] for part in parts], options)
    queries = {} if weak is None else {"queries": "instantiated, then full"}
    found = next((a for a in answers if a.status == "sat" and a.model is not None), None)
    if found is not None:
        return _replayed(variant, contract, q, found, vacuity, started, **queries)
    undecided = [a for a in answers if a.status != "unsat"]
    answer = combined_answer(answers)
    if undecided:
        return _result(variant, contract, block_bits, Verdict.UNKNOWN, started,
                       "; ".join(a.reason for a in undecided), [vacuity, answer], **queries)
    return _result(variant, contract, block_bits, Verdict.PROVED, started, "", [vacuity, answer], **queries)


def _weak_query(variant: str, contract: Contract, q: Query,
                options: SolverOptions) -> tuple[Query, LemmaProof | None]:
    """The query to ask the weaker way: with the refresh's longest-run circuit cut where the transition holds
    one and ``run_lemma`` proves it at this size (the lemma, once per size, named in the row), else ``q``."""
    if contract.weak_pre is None:
        return q, None
    cut = build_query(variant, contract.role, q.block_bits, cut=True)
    if not cut.cuts:
        return q, None
    assert {c.n for c in cut.cuts} == {q.block_bits}, "a block query cuts only its own block's circuit"
    lemma = prove_lemma(q.block_bits, options)
    return (cut if lemma.proved else q), lemma


def combined_answer(answers: list[Answer], names: list[str] | None = None) -> Answer:
    """One answer for the row: who answered each part (the slowest part's solver first), and the parts' times."""
    slowest = max(answers, key=lambda a: a.seconds)
    solvers = sorted({a.solver for a in answers})
    labels = names or [f"part {i}" for i in range(len(answers))]
    combined = Answer(slowest.status, sum(a.seconds for a in answers), None, slowest.reason,
                      "+".join(solvers), {label: {"solver": a.solver, "status": a.status,
                                                  "seconds": round(a.seconds, 3)}
                                          for label, a in zip(labels, answers, strict=True)})
    return combined


def _replayed(variant: str, contract: Contract, q: Query, answer: Answer, vacuity: Answer,
              started: float, **extra: object) -> Result:
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
                       [vacuity, answer], counterexample=found, **extra)
    return _result(variant, contract, q.block_bits, Verdict.VIOLATED, started,
                   f"{'; '.join(broken)}; {where}; after: {after.describe()}", [vacuity, answer],
                   counterexample=found, **extra)


def run_block_suite(variant: str, block_bits: int, options: SolverOptions,
                    wanted: frozenset[str] | None = None, ops: frozenset[str] | None = None,
                    progress: Callable[[Result], None] | None = None, instantiate: bool = True) -> list[Result]:
    """Every block contract of ``variant`` at ``block_bits`` bits per block (``wanted``/``ops``: a selection)."""
    results = []
    for contract in CONTRACTS:
        if wanted is not None and contract.name not in wanted:
            continue
        if ops is not None and contract.role.name not in ops and contract.role.function not in ops:
            continue
        results.append(prove_contract(variant, contract, block_bits, options, instantiate))
        if progress is not None:
            progress(results[-1])
    return results
