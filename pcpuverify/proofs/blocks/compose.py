"""Chunk-level obligations over blocks seen only through their metadata (the ``NxblockB`` rows).

The state is N blocks' ``pcpu_bitmap_md``, no bits: each block is any
metadata ``abstraction.consistent`` allows (which the block invariant implies:
the block contract ``md-abstraction-sound``), and a block a function changes
changes as its block contracts say.  So one proof covers every chunk of N
blocks of B bits, B = 1024 included, without an alloc_map of N * B bits.

The chunk invariants are the project's own, restated over metadata: the
longest free run of the chunk is ``abstraction.longest_run`` of its blocks,
and a run is free when ``abstraction.run_is_free`` says so.  A counterexample
is made concrete (``abstraction.realise`` for each block), replayed on the
model's own function, and judged by the invariants' own concrete checks.

Obligations (op column):

- ``pcpu_chunk_update_hint``: after the chunk refresh, for blocks from
  ``first_free_block`` on (the ones before it full), the four chunk-hint
  invariants hold.  The refresh is the encoder's own function.
- ``pcpu_free_area:same-block``: a free inside one block, from a chunk whose
  hint meets the four invariants, leaves them met: the block changes as the
  block contract ``free-same-block-runs`` says; then the variant's own test of
  whether to refresh the chunk (the encoder's ``pcpu_free_refreshes_chunk``),
  and either the refresh or the hint raised to the block's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import z3

from pcpuverify.invariants.check import invariant
from pcpuverify.model.chunk import PcpuBitmapMd, PcpuChunk
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.proofs.blocks.abstraction import FreeArea, consistent, freed_block, longest_run, realise, run_is_free
from pcpuverify.proofs.blocks.labels import block_label
from pcpuverify.proofs.blocks.state import ConcreteBlock, block_violations, model_chunk, signed
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions, check_all
from pcpuverify.symbolic.bv import I, smin
from pcpuverify.symbolic.state import BLOCK_FIELDS, SymBlock, SymChunk, fresh_chunk
from pcpuverify.symbolic.subjects import subject

CHUNK_HINT_INVARIANTS = (
    "chunk-contig-hint-not-above-free-run",
    "chunk-contig-hint-region-free",
    "chunk-contig-hint-within-a-block",
    "chunk-contig-hint-exact-below-a-block",
)
REFRESH_OP = "pcpu_chunk_update_hint"
FREE_OP = "pcpu_free_area:same-block"
COMPOSED_OPS = (REFRESH_OP, FREE_OP)


def hint_invariant(name: str, chunk: SymChunk, B: int) -> z3.BoolRef:
    """One chunk-hint invariant over the blocks' metadata."""
    longest = longest_run(chunk.md_blocks, B)
    h, placed = chunk.contig_hint, run_is_free(chunk.md_blocks, B, chunk.contig_hint_start, chunk.contig_hint)
    return {
        "chunk-contig-hint-not-above-free-run": h <= longest,
        "chunk-contig-hint-region-free": placed,
        "chunk-contig-hint-within-a-block": longest - h <= B,
        "chunk-contig-hint-exact-below-a-block": z3.Implies(h < B, z3.And(h == longest, placed)),
    }[name]


def blocks_state(chunk: SymChunk, B: int) -> z3.BoolRef:
    """Every block consistent, the blocks before ``first_free_block`` full, the chunk's hint in range."""
    N = chunk.geometry.nr_pages
    ffb = chunk.first_free_block
    return z3.And(
        *[consistent(md, B) for md in chunk.md_blocks],
        ffb >= 0, ffb <= N,
        *[z3.Implies(ffb > k, md.contig_hint == 0) for k, md in enumerate(chunk.md_blocks)],
        chunk.contig_hint >= 0, chunk.contig_hint <= N * B, chunk.contig_hint_start >= 0,
        chunk.contig_hint_start <= N * B,
        chunk.nr_empty_pop_pages >= 0, chunk.nr_empty_pop_pages <= N, chunk.pcpu_nr_empty_pop_pages >= 0,
        chunk.pcpu_nr_empty_pop_pages <= N,
    )


@dataclass(frozen=True)
class Composed:
    pre: SymChunk
    post: SymChunk
    assumptions: z3.BoolRef
    free: FreeArea | None


def compose(variant: str, op: str, B: int, N: int, index: int = 0,
            assumed: tuple[str, ...] = CHUNK_HINT_INVARIANTS) -> Composed:
    """The obligation's state before and after; a free also assumes the chunk-hint invariants ``assumed``."""
    enc = subject(variant).require_encoding()(Geometry(B, N, tuple(range(N))))
    pre = fresh_chunk(Geometry(B, N, tuple(range(N))), "pre")
    pre = pre.set(alloc_map=z3.BitVecVal(0, 1), bound_map=z3.BitVecVal(0, 1))  # no bits: metadata only
    if op == REFRESH_OP:
        return Composed(pre, enc.pcpu_chunk_update_hint(pre), blocks_state(pre, B), None)
    f = FreeArea.fresh(index)
    block, holds = freed_block(pre.md_blocks[index], f, B)
    blocks = tuple(block if k == index else md for k, md in enumerate(pre.md_blocks))
    freed = pre.set(md_blocks=blocks, first_free_block=smin(pre.first_free_block, I(index)))
    # the chunk part of pcpu_block_update_hint_free: the variant's refresh test, else the hint raised
    refresh = enc.pcpu_free_refreshes_chunk(freed, I(index), I(index), f.start, f.end)
    raise_hint = block.contig_hint > freed.contig_hint
    raised = freed.set(contig_hint=z3.If(raise_hint, block.contig_hint, freed.contig_hint),
                       contig_hint_start=z3.If(raise_hint, index * B + block.contig_hint_start,
                                               freed.contig_hint_start))
    post = enc.pcpu_chunk_update_hint(freed).merge(refresh, raised)
    chunk_ok = z3.And([hint_invariant(n, pre, B) for n in assumed])
    return Composed(pre, post, z3.And(blocks_state(pre, B), holds, chunk_ok), f)


# -- replay ------------------------------------------------------------------------------------------


def _md(model: z3.ModelRef, md: SymBlock) -> PcpuBitmapMd:
    return PcpuBitmapMd(*(signed(model, getattr(md, f)) for f in BLOCK_FIELDS))


def concrete_chunk(variant: str, model: z3.ModelRef, c: Composed, B: int) -> tuple[PcpuAllocator, PcpuChunk, int]:
    """The chunk a counterexample describes, on the model: each block's bits realise its metadata (for the
    freed block, with its freed run's two sides free as well).  Returns the freed bit offset (-1: none)."""
    N = c.pre.geometry.nr_pages
    alloc = subject(variant).model(B, N)
    chunk = model_chunk(alloc)
    bits, bit_off = 0, -1
    for k, sym in enumerate(c.pre.md_blocks):
        md = _md(model, sym)
        chunk.md_blocks.blocks[k] = md
        block = realise(md, B)
        if c.free is not None and k == c.free.index:
            lo, hi, start, end = (signed(model, t) for t in (c.free.lo, c.free.hi, c.free.start, c.free.end))
            block &= ~((((1 << (lo - start)) - 1) << start) | (((1 << (end - hi)) - 1) << hi))
            bit_off = k * B + lo
            chunk.bound_map.set_bit(bit_off)
            chunk.bound_map.set_bit(k * B + hi)
            chunk.allocations[bit_off] = hi - lo
        bits |= block << (k * B)
    chunk.alloc_map.value = bits
    chunk.free_bits = N * B - bits.bit_count()
    chunk.contig_hint = signed(model, c.pre.contig_hint)
    chunk.contig_hint_start = signed(model, c.pre.contig_hint_start)
    chunk.first_free_block = signed(model, c.pre.first_free_block)
    chunk.populated.bitmap_fill(N)
    chunk.nr_populated = N
    return alloc, chunk, bit_off


def _hint_violations(alloc: PcpuAllocator, chunk: PcpuChunk, names: tuple[str, ...]) -> list[str]:
    return [m for n in names for _, m in invariant(n).check(alloc, chunk)]


def _block_problems(chunk: PcpuChunk, B: int) -> list[str]:
    return [f"md_blocks[{k}]: {m}" for k, md in enumerate(chunk.md_blocks)
            for m in block_violations(ConcreteBlock(B, (chunk.alloc_map.value >> (k * B)) & ((1 << B) - 1), md))]


def replay(variant: str, op: str, name: str, model: z3.ModelRef, c: Composed, B: int,
           assumed: tuple[str, ...]) -> tuple[Verdict, str, dict[str, object]]:
    """VIOLATED when the model, from the concrete chunk (which meets what was assumed), breaks ``name``."""
    alloc, chunk, bit_off = concrete_chunk(variant, model, c, B)
    drawn = chunk.alloc_map.value
    before = (f"chunk of {chunk.nr_pages} x {B} bits, contig_hint {chunk.contig_hint}@{chunk.contig_hint_start},"
              f" first_free_block {chunk.first_free_block}; md "
              + "; ".join(f"[{k}] {m.contig_hint}@{m.contig_hint_start} l{m.left_free} r{m.right_free}"
                          f" ff{m.first_free}" for k, m in enumerate(chunk.md_blocks)))
    unmet = _block_problems(chunk, B)
    if op == REFRESH_OP:
        alloc.pcpu_chunk_update_hint(chunk)
    else:
        unmet += _hint_violations(alloc, chunk, assumed)
        alloc.pcpu_free_area(chunk, bit_off * PCPU_MIN_ALLOC_SIZE)
        before += f"; free of bits [{bit_off}, {bit_off + (chunk.bound_map.find_next_bit(chunk.alloc_map.nbits, bit_off + 1) - bit_off)})"
    broken = _hint_violations(alloc, chunk, (name,))
    found = {"alloc_map": format(drawn, f"0{chunk.alloc_map.nbits}b")[::-1], "freed_bit_off": bit_off}
    if unmet:
        return (Verdict.SPURIOUS, f"the concrete chunk breaks the precondition ({'; '.join(unmet[:3])}): {before}",
                found)
    if not broken:
        return Verdict.SPURIOUS, f"the model keeps {name} on the concrete chunk: {before}", found
    detail = (f"{'; '.join(broken)}; a counterexample to the step, not a trace from a new chunk;"
              f" before: {before} (alloc_map in the row's counterexample)")
    return Verdict.VIOLATED, detail, found


# -- rows --------------------------------------------------------------------------------------------


def prove_composed(variant: str, name: str, op: str, B: int, N: int, options: SolverOptions,
                   assumed: tuple[str, ...] = CHUNK_HINT_INVARIANTS) -> Result:
    """Every index of the freed block is its own query (one for the refresh); PROVED when every one is."""
    started = time.perf_counter()
    cases = [compose(variant, op, B, N, k, assumed) for k in (range(N) if op == FREE_OP else range(1))]
    vacuity = check_all([[c.assumptions] for c in cases], options)
    answers = check_all([[c.assumptions, z3.Not(hint_invariant(name, c.post, B))] for c in cases], options)
    info: dict[str, object] = {"solver": "+".join(sorted({a.solver for a in answers})),
            "solvers": {f"case {i}": {"solver": a.solver, "status": a.status, "seconds": round(a.seconds, 3)}
                        for i, a in enumerate(answers)}}
    if op == FREE_OP:
        info["assumed"] = list(assumed)

    def row(verdict: Verdict, detail: str = "", found: dict[str, object] | None = None) -> Result:
        extra = info if found is None else {**info, "counterexample": found}
        return Result(variant, block_label(B, N), name, op, verdict, time.perf_counter() - started, detail,
                      extra=extra)

    if any(v.status == "unsat" for v in vacuity):
        return row(Verdict.VACUOUS, "the assumptions are unsatisfiable")
    for case, answer in zip(cases, answers, strict=True):
        if answer.status == "sat" and answer.model is not None:
            return row(*replay(variant, op, name, answer.model, case, B, assumed))
    undecided = [a for a in vacuity if a.status != "sat"] + [a for a in answers if a.status != "unsat"]
    if undecided:
        return row(Verdict.UNKNOWN, "; ".join(a.reason for a in undecided))
    return row(Verdict.PROVED)


def houdini(names: tuple[str, ...], prove: Callable[[str, tuple[str, ...]], Result]) -> dict[str, Result]:
    """Each name's row, ``prove(name, assumed)`` with every name still held assumed: a name whose row is not
    PROVED is dropped from the assumptions, round after round, so a PROVED never rests on one the variant
    breaks."""
    assumed, settled = names, {}
    while True:
        rows = {name: prove(name, assumed) for name in assumed}
        dropped = tuple(n for n, r in rows.items() if r.verdict is not Verdict.PROVED)
        settled.update({n: rows[n] for n in dropped} if dropped else rows)
        if not dropped:
            return settled
        assumed = tuple(n for n in assumed if n not in dropped)


def run_composed_suite(variant: str, B: int, N: int, options: SolverOptions,
                       wanted: frozenset[str] | None = None, ops: frozenset[str] | None = None,
                       progress: Callable[[Result], None] | None = None) -> list[Result]:
    """The refresh's rows, then the free's with Houdini: an invariant that is not PROVED is dropped from
    what the free assumes, round after round, so a PROVED never rests on one the variant breaks."""
    results: list[Result] = []
    if ops is None or REFRESH_OP in ops:
        for name in CHUNK_HINT_INVARIANTS:
            if wanted is None or name in wanted:
                results.append(prove_composed(variant, name, REFRESH_OP, B, N, options))
                if progress is not None:
                    progress(results[-1])
    if ops is not None and FREE_OP not in ops:
        return results
    settled = houdini(CHUNK_HINT_INVARIANTS,
                      lambda name, assumed: prove_composed(variant, name, FREE_OP, B, N, options, assumed))
    for name in CHUNK_HINT_INVARIANTS:
        if wanted is None or name in wanted:
            results.append(settled[name])
            if progress is not None:
                progress(results[-1])
    return results
