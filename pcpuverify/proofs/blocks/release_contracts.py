"""The scan_hint allocator's block contracts: every 5.2 block invariant, kept by every block-level function.

For a variant with 5.2's blocks (``linux-5.4``, ``mainline``,
``mainline-fixed``) a ``blockB`` row is one invariant of
``BLOCK_INVARIANTS`` and one role (``release_roles``): from a block of B
bits that meets every one of them, and the area its caller hands it
(``precondition``, ``search_guarantee``), the function's part on the block
keeps that invariant.  The invariants are
the project's own, each with the sentence of the release's comments it
encodes, and their own Z3 predicates, asked of a one-block chunk whose
``chunk_md`` is the block (``as_block``: the predicates' ``chunk_md`` half
then says nothing more).

A row is PROVED when the query is unsat and the precondition (once per role)
is satisfiable; a sat is replayed on the model's own function
(``release_roles.run_release_on_model``): VIOLATED when the model's block
meets every invariant before and breaks the row's after, SPURIOUS (a
failure of ours, never a pass) otherwise; given a kernel source, on its C
build too, NONCONFORMANT where the C leaves another block.  A row's seconds
are its own query's; the role's vacuity check is in its ``vacuity``.  What the rows do not cover:
the chunk (``chunk_md``, ``pcpu_chunk_refresh_hint``, the slots, the
population) and reachability -- a VIOLATED row is a block from which one
call breaks the invariant, not a trace from a new chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import z3

from pcpuverify.invariants.check import invariant
from pcpuverify.kernel.block_step import BlockStepError
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.linux_5_4 import Linux54
from pcpuverify.proofs.blocks.abstraction import FreeArea, freed_block
from pcpuverify.proofs.blocks.contracts import conjuncts
from pcpuverify.proofs.blocks.freed_run import freed_run
from pcpuverify.proofs.blocks.labels import block_label
from pcpuverify.proofs.blocks.prove import combined_answer
from pcpuverify.proofs.blocks.release_abstraction import consistent54, consistent54_concrete
from pcpuverify.proofs.blocks.release_instances import fields_in_range, weak_queries
from pcpuverify.proofs.blocks.release_roles import (
    RELEASE_ROLES,
    SCAN,
    ReleaseBlock,
    fresh_release_block,
    md_of,
    release_area,
    release_block,
    release_encoder,
    release_transition,
    run_release_on_c,
    run_release_on_model,
)
from pcpuverify.proofs.blocks.roles import FREE_ROLES, Area, Role, area_mask, post_bits
from pcpuverify.proofs.blocks.state import signed
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import Answer, SolverOptions, check, check_all
from pcpuverify.symbolic.bv import I, bit, low_mask
from pcpuverify.symbolic.release_state import RELEASE_BLOCK_FIELDS, SymBlockMd, SymChunk54
from pcpuverify.symbolic.subjects import subject

# every invariant of one 5.2 block (invariants/release_hints.py), in the order the rows are proved
BLOCK_INVARIANTS = (
    "scan-hint-below-contig-hint",
    "scan-hint-before-contig-hint",
    "scan-hint-region-free",
    "scan-hint-clear-of-contig-hint",
    "scan-hint-maximal",
    "scan-hint-largest-before",
    "block-contig-hint-exact",
    "block-left-right-free-exact",
    "first-free-not-above-first-free-bit",
    "block-nr-bits",
    "hints-inside-their-bits",
)


# what the ``NxblockB`` rows rest on: the freed run's place among the runs the metadata shows, and the block
# seen through its metadata alone (``release_abstraction``)
FREE_SAME = next(role for role in FREE_ROLES if role.part == "same")
FREE_RUNS = "free-same-block-runs"
METADATA = Role("pcpu_block_md", "", "read")
ABSTRACTION = "md-abstraction-sound"


def release_label_rows(wanted: frozenset[str] | None = None) -> list[tuple[str, str]]:
    """The (invariant, op) rows of a ``blockB`` label for a variant with 5.2's blocks, in the order proved."""
    rows = [(name, role.name) for role in RELEASE_ROLES for name in BLOCK_INVARIANTS]
    rows += [(FREE_RUNS, FREE_SAME.name), (ABSTRACTION, METADATA.name)]
    return [r for r in rows if wanted is None or r[0] in wanted]


def as_block(chunk: SymChunk54) -> SymChunk54:
    """The one-block chunk with ``chunk_md`` the block itself (same bits, same ``nr_bits``)."""
    return chunk.set(chunk_md=md_of(chunk))


def holds(name: str, chunk: SymChunk54) -> z3.BoolRef:
    return invariant(name).z3(as_block(chunk))


@dataclass(frozen=True)
class ReleaseQuery:
    block_bits: int
    pre: SymChunk54
    post: SymChunk54
    area: Area


def build_release_query(variant: str, role: Role, block_bits: int) -> ReleaseQuery:
    pre = fresh_release_block(block_bits, "pre")
    a = release_area(role, block_bits)
    return ReleaseQuery(block_bits, pre, release_transition(variant, role, pre, a), a)


def block_pre(block: SymChunk54, block_bits: int) -> z3.BoolRef:
    """Every field of the block's metadata in range, and every block invariant."""
    return z3.And(*fields_in_range(block, block_bits), *(holds(name, block) for name in BLOCK_INVARIANTS))


def precondition(role: Role, q: ReleaseQuery) -> z3.BoolRef:
    """``block_pre``, the area's bits (an allocation takes free bits, and so does the area a search skipped; a
    free releases allocated ones), and what the search guarantees of the area."""
    B, bits = q.block_bits, q.pre.alloc_map
    mask = area_mask(q.area, B)
    on_area = bits & mask == mask if role.kind == "free" else bits & mask == 0
    return z3.And(block_pre(q.pre, B), q.area.allowed, on_area, search_guarantee(role, q))


def search_guarantee(role: Role, q: ReleaseQuery) -> z3.BoolRef:
    """What ``pcpu_alloc_area``'s first-fit search (from the region ``pcpu_find_block_fit`` returns) guarantees
    of the area it hands a block, read off 5.4's and 7.1.3's C.

    An allocation never starts inside the block's leading free run past its first bit: the block's first bit
    is aligned to every alignment (at most ``PCPU_BITMAP_BLOCK_BITS``), so a search that reaches it takes the
    area there, and no search starts inside that run.  ``pcpu_next_hint`` gives ``first_free`` (0 when that run
    is not empty, by ``first-free-not-above-first-free-bit``) or a scan hint's end (an allocated bit, by
    ``scan-hint-maximal``); the right-edge and cross-block regions of ``pcpu_next_fit_region`` start in a
    block's trailing free run (``ALIGN(PCPU_BITMAP_BLOCK_BITS - right_free, align)``), which is its leading
    run only when the whole block is free, and then at bit 0.

    ``pcpu_block_update_scan`` gets an area the search skipped: it ends at the allocated bit ``find_next_bit``
    stopped at, before the block's contig hint.  Only a region of the contig branch of ``pcpu_next_fit_region``
    is searched past a skipped area (the others are aligned free areas that fit at their start); that search
    starts at ``pcpu_next_hint``, before the hint, and first fit stops at the hint's aligned start, which fits;
    a skipped area cannot run into the hint, which is the longest run.  A free's block part needs nothing more.
    """
    B, md, bits, lo, hi = q.block_bits, md_of(q.pre), q.pre.alloc_map, q.area.lo, q.area.hi
    if role.kind == "alloc":
        return z3.Or(lo == 0, bits & low_mask(lo, B) != 0)
    if role is SCAN:
        return z3.And(bit(bits, hi, B), hi < md.contig_hint_start)
    return z3.BoolVal(True)


# -- concretely -----------------------------------------------------------------------------------------


def block_violations(variant: str, block: ReleaseBlock, names: Sequence[str]) -> list[str]:
    """The invariants' own concrete checks on a one-block chunk of the model holding ``block``: the block's
    findings only (``chunk_md`` is the model's new chunk's, and not asked)."""
    alloc = subject(variant).model(block.block_bits, 1)
    assert isinstance(alloc, Linux54), f"{variant} does not keep 5.2's blocks"
    chunk = alloc.pcpu_alloc_chunk()
    chunk.alloc_map.value = block.bits
    chunk.md_blocks.blocks[0] = replace(block.md)
    return [f"{name}: {message}" for name in names for field, message in invariant(name).check(alloc, chunk)
            if field.startswith("md_blocks[0]")]


def area_unmet(role: Role, block: ReleaseBlock, lo: int, hi: int) -> list[str]:
    """``precondition``'s area clauses, concretely."""
    mask = ((1 << (hi - lo)) - 1) << lo
    if role.kind == "free":
        return [] if block.bits & mask == mask else [f"the area [{lo}, {hi}) is not allocated"]
    if block.bits & mask:
        return [f"the area [{lo}, {hi}) is not free"]
    return search_unmet(role, block, lo, hi)


def search_unmet(role: Role, block: ReleaseBlock, lo: int, hi: int) -> list[str]:
    """``search_guarantee``, concretely."""
    if role is SCAN and not (hi < block.md.contig_hint_start and (block.bits >> hi) & 1):
        return [f"the skipped area [{lo}, {hi}) does not end at an allocated bit before the contig hint"]
    if role.kind == "alloc" and lo and not block.bits & ((1 << lo) - 1):
        return [f"the area [{lo}, {hi}) starts inside the block's leading free run"]
    return []


# -- to a verdict ---------------------------------------------------------------------------------------


def _row(variant: str, role: Role, block_bits: int, name: str, verdict: Verdict, answer: Answer, vacuity: Answer,
         detail: str = "", **extra: object) -> Result:
    info = {**answer.to_json(), "vacuity": vacuity.to_json(), **extra}
    return Result(variant, block_label(block_bits), name, role.name, verdict, answer.seconds, detail,
                  extra={k: v for k, v in info.items() if v is not None})


def _unsatisfied(variant: str, role: Role, block_bits: int, name: str, vacuity: Answer) -> Result:
    """The row of a precondition the solver did not find satisfiable: VACUOUS on unsat, else UNKNOWN."""
    if vacuity.status == "unsat":
        return _row(variant, role, block_bits, name, Verdict.VACUOUS, vacuity, vacuity,
                    "the precondition is unsatisfiable")
    return _row(variant, role, block_bits, name, Verdict.UNKNOWN, vacuity, vacuity, f"vacuity check: {vacuity.reason}")


def _replayed(variant: str, role: Role, q: ReleaseQuery, name: str, answer: Answer, vacuity: Answer,
              source: KernelSource | None) -> Result:
    """The solver's block, replayed: VIOLATED when the model breaks ``name`` from a block that meets the pre, and,
    given a kernel ``source``, its C build's function leaves the same block (NONCONFORMANT if not)."""
    assert answer.model is not None
    before = release_block(answer.model, q.pre)
    lo, hi = signed(answer.model, q.area.lo), signed(answer.model, q.area.hi)
    unmet = block_violations(variant, before, BLOCK_INVARIANTS) + area_unmet(role, before, lo, hi)
    after = run_release_on_model(variant, role, before, lo, hi)
    broken = block_violations(variant, after, [name])
    where = f"before: {before.describe()}; area [{lo}, {hi})"
    found = {"block": before.to_json(), "after": after.to_json(), "area": [lo, hi]}
    if unmet or not broken:
        why = f"the block breaks the precondition on the model ({'; '.join(unmet)})" if unmet else \
            "the model keeps the invariant"
        return _row(variant, role, q.block_bits, name, Verdict.SPURIOUS, answer, vacuity, f"{why}: {where}",
                    counterexample=found)
    detail = f"{'; '.join(broken)}; {where}; after: {after.describe()}"
    if source is None:
        return _row(variant, role, q.block_bits, name, Verdict.VIOLATED, answer, vacuity, detail, counterexample=found)
    try:
        on_c = run_release_on_c(source, role, before, lo, hi)
    except BlockStepError as e:  # the model ran the step and the C did not (a sanitizer report, say)
        return _row(variant, role, q.block_bits, name, Verdict.NONCONFORMANT, answer, vacuity,
                    f"the model and {source.percpu_c} disagree: {e}; {detail}", counterexample=found,
                    c_source=str(source.percpu_c))
    if on_c != after:
        return _row(variant, role, q.block_bits, name, Verdict.NONCONFORMANT, answer, vacuity,
                    f"the model and {source.percpu_c} disagree: the C's block after is {on_c.describe()}; {detail}",
                    counterexample=found, c_source=str(source.percpu_c))
    return _row(variant, role, q.block_bits, name, Verdict.VIOLATED, answer, vacuity,
                f"{detail}; the same on {source.percpu_c}", counterexample=found, c_source=str(source.percpu_c))


def _proved_weakly(variant: str, role: Role, q: ReleaseQuery, names: Sequence[str],
                   options: SolverOptions) -> dict[str, Answer]:
    """The rows of ``names`` the weaker queries prove (``release_instances``), each with its own queries'
    answers; the role's shared ones (implied, steps), on which every such row rests, are named and timed in
    the first (so that the rows' seconds add up to the role's)."""
    weak = weak_queries(variant, role, q, names, holds, BLOCK_INVARIANTS, search_guarantee(role, q))
    asked = [*weak.shared, *(query for name in names for query in weak.rows[name])]
    answers = iter(check_all([assertions for _, assertions in asked], options))
    shared = [next(answers) for _ in weak.shared]
    own = {name: [next(answers) for _ in weak.rows[name]] for name in names}
    if any(a.status != "unsat" for a in shared):
        return {}
    proved: dict[str, Answer] = {}
    for name in names:
        if all(a.status == "unsat" for a in own[name]):
            first = [] if proved else list(zip(weak.shared, shared, strict=True))
            mine = [*first, *zip(weak.rows[name], own[name], strict=True)]
            proved[name] = combined_answer([a for _, a in mine], [label for (label, _), _ in mine])
    return proved


def prove_role(variant: str, role: Role, block_bits: int, names: Sequence[str], options: SolverOptions,
               source: KernelSource | None = None, instantiate: bool = True) -> list[Result]:
    """Each named invariant kept by ``role``: one vacuity check, then the weaker queries of every row
    (``release_instances``, in parallel with ``options.jobs``); a row they do not prove is asked whole.  A sat
    is replayed on the model, and on ``source``'s C build if given.  ``instantiate=False`` asks only the whole
    queries (``bench/bench_proofs.py --blocks`` compares the two)."""
    q = build_release_query(variant, role, block_bits)
    pre = precondition(role, q)
    vacuity = check([pre], options)
    if vacuity.status != "sat":
        return [_unsatisfied(variant, role, block_bits, name, vacuity) for name in names]
    proved = _proved_weakly(variant, role, q, names, options) if instantiate else {}
    tried = {"queries": "instantiated, then full"} if instantiate else {}
    whole = [name for name in names if name not in proved]
    full = dict(zip(whole, check_all([[pre, z3.Not(holds(name, q.post))] for name in whole], options), strict=True))
    results = []
    for name in names:
        if name in proved:
            results.append(_row(variant, role, block_bits, name, Verdict.PROVED, proved[name], vacuity,
                                queries="instantiated"))
            continue
        answer = full[name]
        if answer.status == "unsat":
            results.append(_row(variant, role, block_bits, name, Verdict.PROVED, answer, vacuity, **tried))
        elif answer.status == "sat" and answer.model is not None:
            results.append(_replayed(variant, role, q, name, answer, vacuity, source))
        else:
            results.append(_row(variant, role, block_bits, name, Verdict.UNKNOWN, answer, vacuity, answer.reason,
                                **tried))
    return results


def prove_abstraction(variant: str, block_bits: int, options: SolverOptions) -> Result:
    """``md-abstraction-sound``: a block that meets every block invariant has metadata ``consistent54`` allows, so
    the ``NxblockB`` rows, which assume only that of each block, cover every such block.  A sat is judged on the
    model: VIOLATED when the block meets every invariant's own concrete check and its metadata is outside."""
    block = fresh_release_block(block_bits, "pre")
    pre = block_pre(block, block_bits)
    vacuity = check([pre], options)
    if vacuity.status != "sat":
        return _unsatisfied(variant, METADATA, block_bits, ABSTRACTION, vacuity)
    answer = check([pre, z3.Not(consistent54(md_of(block), block_bits))], options)
    if answer.status == "unsat":
        return _row(variant, METADATA, block_bits, ABSTRACTION, Verdict.PROVED, answer, vacuity)
    if answer.status != "sat" or answer.model is None:
        return _row(variant, METADATA, block_bits, ABSTRACTION, Verdict.UNKNOWN, answer, vacuity, answer.reason)
    found = release_block(answer.model, block)
    unmet = block_violations(variant, found, BLOCK_INVARIANTS)
    where = f"block: {found.describe()}"
    if unmet:
        verdict = Verdict.SPURIOUS
        detail = f"the block breaks the precondition on the model ({'; '.join(unmet)}): {where}"
    elif consistent54_concrete(found.md, block_bits):
        verdict, detail = Verdict.SPURIOUS, f"the concrete metadata is inside the abstraction: {where}"
    else:
        verdict = Verdict.VIOLATED
        detail = f"every block invariant holds, the metadata is outside the abstraction: {where}"
    return _row(variant, METADATA, block_bits, ABSTRACTION, verdict, answer, vacuity, detail,
                counterexample={"block": found.to_json()})


def freed_run_facts(variant: str, q: ReleaseQuery) -> z3.BoolRef:
    """``free-same-block-runs``: a free inside the block finds (``pcpu_freed_extent``, the encoder's own) the
    maximal free run around the area, and that run sits among the old metadata's runs as
    ``abstraction.freed_block`` says (what the ``NxblockB`` free rows assume of the freed block)."""
    B = q.block_bits
    now = q.pre.set(alloc_map=post_bits(FREE_SAME, q.pre, q.area))  # type: ignore[arg-type]
    start, end = release_encoder(variant, B).pcpu_freed_extent(now, I(0), I(0), q.area.lo, q.area.hi)
    run_start, run_end = freed_run(now.alloc_map, q.area.lo, q.area.hi, B)
    return z3.And(start == run_start, end == run_end, freed_run_place(q))


def freed_run_place(q: ReleaseQuery) -> z3.BoolRef:
    """The run read off the bits after the free, placed among the old metadata's runs (``freed_block``)."""
    B = q.block_bits
    bits = post_bits(FREE_SAME, q.pre, q.area)  # type: ignore[arg-type]
    run_start, run_end = freed_run(bits, q.area.lo, q.area.hi, B)
    _, place = freed_block(md_of(q.pre), FreeArea(0, q.area.lo, q.area.hi, run_start, run_end), B)
    return place


def freed_run_unmet(variant: str, before: ReleaseBlock, lo: int, hi: int) -> list[str]:
    """``freed_run_facts``, concretely: the run read off the bits, the relation on constants, and the model's own
    free (``run_release_on_model``) against ``pcpu_block_update`` of that run."""
    B = before.block_bits
    bits = before.bits & ~(((1 << (hi - lo)) - 1) << lo)
    start, end = lo, hi
    while start > 0 and not (bits >> (start - 1)) & 1:
        start -= 1
    while end < B and not (bits >> end) & 1:
        end += 1
    md = SymBlockMd(*(I(getattr(before.md, f)) for f in RELEASE_BLOCK_FIELDS))
    run = FreeArea(0, I(lo), I(hi), I(start), I(end))
    _, holds = freed_block(md, run, B)
    wrong = [] if z3.is_true(z3.simplify(holds)) else [
        f"the freed run [{start}, {end}) does not sit among the old metadata's runs as expected"]
    alloc = subject(variant).model(B, 1)
    assert isinstance(alloc, Linux54), f"{variant} does not keep 5.2's blocks"
    expected = replace(before.md)
    alloc.pcpu_block_update(expected, start, end)
    freed = run_release_on_model(variant, FREE_SAME, before, lo, hi)
    if freed.md != expected:
        wrong.append(f"the model's free leaves {freed.describe()}, not pcpu_block_update of the freed run"
                     f" [{start}, {end})")
    return wrong


def prove_free_runs(variant: str, block_bits: int, options: SolverOptions, instantiate: bool = True) -> Result:
    """``free-same-block-runs`` for ``pcpu_block_update_hint_free:same``: from ``precondition``, the facts
    ``freed_run_facts`` states.

    First the weaker way (``release_instances``: what the invariants imply, then steps), every query named in
    the row's ``solvers``: all unsat proves it.  Otherwise the full query decides: a sat is VIOLATED when the
    block meets the precondition on the model and the facts fail concretely (``freed_run_unmet``), SPURIOUS
    otherwise."""
    q = build_release_query(variant, FREE_SAME, block_bits)
    pre = precondition(FREE_SAME, q)
    vacuity = check([pre], options)
    if vacuity.status != "sat":
        return _unsatisfied(variant, FREE_SAME, block_bits, FREE_RUNS, vacuity)
    if instantiate:
        weak = weak_queries(variant, FREE_SAME, q, [], holds, BLOCK_INVARIANTS, search_guarantee(FREE_SAME, q))
        asked = [*weak.shared, *((f"the freed run's place, {i}", [*weak.given, z3.Not(fact)])
                                 for i, fact in enumerate(conjuncts(freed_run_place(q))))]
        answers = check_all([assertions for _, assertions in asked], options)
        if all(a.status == "unsat" for a in answers):
            return _row(variant, FREE_SAME, block_bits, FREE_RUNS, Verdict.PROVED,
                        combined_answer(answers, [name for name, _ in asked]), vacuity, queries="instantiated")
    tried = {"queries": "instantiated, then full"} if instantiate else {}
    answer = check([pre, z3.Not(freed_run_facts(variant, q))], options)
    if answer.status == "unsat":
        return _row(variant, FREE_SAME, block_bits, FREE_RUNS, Verdict.PROVED, answer, vacuity, **tried)
    if answer.status != "sat" or answer.model is None:
        return _row(variant, FREE_SAME, block_bits, FREE_RUNS, Verdict.UNKNOWN, answer, vacuity, answer.reason,
                    **tried)
    before = release_block(answer.model, q.pre)
    lo, hi = signed(answer.model, q.area.lo), signed(answer.model, q.area.hi)
    unmet = block_violations(variant, before, BLOCK_INVARIANTS) + area_unmet(FREE_SAME, before, lo, hi)
    wrong = [] if unmet else freed_run_unmet(variant, before, lo, hi)
    where = f"before: {before.describe()}; area [{lo}, {hi})"
    if unmet or not wrong:
        why = f"the block breaks the precondition on the model ({'; '.join(unmet)})" if unmet else \
            "the facts hold on the concrete block"
        verdict, detail = Verdict.SPURIOUS, f"{why}: {where}"
    else:
        verdict, detail = Verdict.VIOLATED, f"{'; '.join(wrong)}; {where}"
    return _row(variant, FREE_SAME, block_bits, FREE_RUNS, verdict, answer, vacuity, detail,
                counterexample={"block": before.to_json(), "area": [lo, hi]}, **tried)


def run_release_block_suite(variant: str, block_bits: int, options: SolverOptions,
                            wanted: frozenset[str] | None = None, progress: Callable[[Result], None] | None = None,
                            ops: frozenset[str] | None = None, source: KernelSource | None = None,
                            instantiate: bool = True) -> list[Result]:
    """Every row of ``blockB`` for a variant with 5.2's blocks (``wanted``: only these invariants; ``ops``: only
    these roles or functions; ``source``: a kernel whose C replays each VIOLATED row too; ``instantiate=False``:
    only the whole queries)."""
    names = [name for name in BLOCK_INVARIANTS if wanted is None or name in wanted]
    roles = [role for role in RELEASE_ROLES if ops is None or role.name in ops or role.function in ops]
    results: list[Result] = []
    for role in roles if names else ():
        for result in prove_role(variant, role, block_bits, names, options, source, instantiate):
            results.append(result)
            if progress is not None:
                progress(result)
    if (wanted is None or FREE_RUNS in wanted) and (ops is None or FREE_SAME.name in ops or FREE_SAME.function in ops):
        results.append(prove_free_runs(variant, block_bits, options, instantiate))
        if progress is not None:
            progress(results[-1])
    if (wanted is None or ABSTRACTION in wanted) and (ops is None or METADATA.name in ops or METADATA.function in ops):
        results.append(prove_abstraction(variant, block_bits, options))
        if progress is not None:
            progress(results[-1])
    return results
