"""5.2's ``chunk_md`` over N blocks seen only through their ``pcpu_block_md`` (the ``NxblockB`` rows of
``linux-5.4``, ``mainline`` and ``mainline-fixed``).

Five chunk-hint invariants of ``chunk_md``, each kept by two steps:

- ``pcpu_chunk_refresh_hint:full``: ``pcpu_chunk_refresh_hint(chunk, true)``,
  the full scan (5.4's and 7.1.3's free path when a free spans blocks or
  frees a whole one; ``mainline-fixed``'s allocation too, its fix 9);
- ``pcpu_free_area:same-block``: a free inside one block, from a chunk whose
  ``chunk_md`` meets the invariants (``compose.houdini`` drops what is not
  kept): ``first_free`` lowered, the block changed by the encoder's own
  ``pcpu_block_update`` of the freed run, then the free's chunk part (the
  variant's ``pcpu_free_refreshes_chunk``, the full scan or its
  ``pcpu_free_update_chunk_md``).

The scan reads each block through ``pcpu_next_md_free_region`` only, so a
block is any metadata ``release_abstraction.consistent54`` allows (which the
eleven block invariants imply: blockB's row ``md-abstraction-sound``), and
the freed run is placed among the old runs as blockB's
``free-same-block-runs`` proves.  One proof covers 4 blocks of 1024 bits
without an alloc_map of 4096 bits.

The invariants are the project's own, restated over metadata: the chunk's
longest free run is ``abstraction.longest_run`` of its blocks (exact: each
block's contig hint is its longest run, its edges exact), a block's longest
run is its contig hint, and ``abstraction.run_is_free`` places a run.  A
counterexample is made concrete (``release_abstraction.realise54`` for each
block), replayed on the model's own function, and judged by the invariants'
own concrete checks; given a kernel source, the C build's own function runs
on the same chunk and must leave the same ``chunk_md`` (NONCONFORMANT if
not).

Not covered here (the chunk suite at small geometries covers them): the scan
from a promoted scan hint (``full_scan`` false, the allocation's), frees that
span blocks, ``chunk_md``'s scan hint (the full scan keeps a stale one it
meets no area before: the CTI of ``docs/releases.md``'s 2x16 section),
``nr_empty_pop_pages``, reachability, and a ``chunk_md`` whose contig hint
lies on a run no block's metadata shows (the free assumes the invariants of
the pre-state as restated, so with its hint on a shown run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import z3

from pcpuverify.invariants.check import invariant
from pcpuverify.kernel.block_step import BlockStepError, c_chunk_md_after
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.linux_5_4 import Linux54, PcpuBlockMd, PcpuChunk54
from pcpuverify.proofs.blocks.abstraction import FreeArea, freed_block, longest_run, run_is_free
from pcpuverify.proofs.blocks.compose import houdini
from pcpuverify.proofs.blocks.labels import block_label
from pcpuverify.proofs.blocks.release_abstraction import consistent54, realise54
from pcpuverify.proofs.blocks.release_contracts import BLOCK_INVARIANTS
from pcpuverify.proofs.blocks.state import signed
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions, check_all
from pcpuverify.symbolic.bv import I, smin
from pcpuverify.symbolic.encode_linux_5_4 import SymLinux54
from pcpuverify.symbolic.release_state import RELEASE_BLOCK_FIELDS, SymBlockMd, SymChunk54, fresh_chunk54
from pcpuverify.symbolic.subjects import subject

CHUNK_MD_INVARIANTS = (
    "chunk-md-contig-hint-longest",
    "chunk-hint-never-above-available",
    "chunk-hint-covers-every-block",
    "chunk-hint-accurate-in-one-block",
    "chunk-hint-off-by-at-most-a-page",
)
REFRESH_FULL_OP = "pcpu_chunk_refresh_hint:full"
FREE_OP = "pcpu_free_area:same-block"
RELEASE_COMPOSED_OPS = (REFRESH_FULL_OP, FREE_OP)


def md_invariant(name: str, chunk: SymChunk54, B: int, also_free: z3.BoolRef | None = None) -> z3.BoolRef:
    """One chunk-hint invariant of ``chunk_md`` over the blocks' metadata; ``also_free``: the hint's run is free
    for another reason too (after a free: it was on a run the old metadata showed, or lies in the freed run)."""
    blocks, h, hs = chunk.md_blocks, chunk.chunk_md.contig_hint, chunk.chunk_md.contig_hint_start
    longest = longest_run(blocks, B)
    in_one_block = z3.Or(*[md.contig_hint == longest for md in blocks])
    placed = run_is_free(blocks, B, hs, h)
    return {
        "chunk-md-contig-hint-longest": longest <= h,
        "chunk-hint-never-above-available": z3.And(h <= longest,
                                                   placed if also_free is None else z3.Or(placed, also_free)),
        "chunk-hint-covers-every-block": z3.And(*[md.contig_hint <= h for md in blocks]),
        "chunk-hint-accurate-in-one-block": z3.Implies(z3.And(longest > 0, in_one_block), h == longest),
        "chunk-hint-off-by-at-most-a-page": longest - h <= B,
    }[name]


def refresh_pre(chunk: SymChunk54, B: int) -> z3.BoolRef:
    """Every block consistent; ``chunk_md`` in range, ``nr_bits`` the chunk's, its hints inside its bits and the
    scan hint not above the contig hint (``chunk_md``'s half of ``block-nr-bits``, ``hints-inside-their-bits`` and
    ``scan-hint-below-contig-hint``: its fields alone), and ``first_free`` at or before each bit the metadata
    shows free (a block's left edge, its contig hint's start)."""
    md, n = chunk.chunk_md, len(chunk.md_blocks) * B
    conds = [consistent54(b, B) for b in chunk.md_blocks]
    conds += [z3.And(getattr(md, f) >= 0, getattr(md, f) <= n) for f in RELEASE_BLOCK_FIELDS]
    conds += [md.nr_bits == n, md.contig_hint_start + md.contig_hint <= n, md.scan_hint <= md.contig_hint,
              z3.Implies(md.scan_hint > 0, md.scan_hint_start + md.scan_hint <= n)]
    for k, b in enumerate(chunk.md_blocks):
        conds += [z3.Implies(b.left_free > 0, md.first_free <= k * B),
                  z3.Implies(b.contig_hint > 0, md.first_free <= k * B + b.contig_hint_start)]
    return z3.And(conds)


@dataclass(frozen=True)
class Composed54:
    """One query's chunk before and after, what it assumes, and the free (None: the full scan alone)."""

    pre: SymChunk54
    post: SymChunk54
    assumptions: z3.BoolRef
    free: FreeArea | None
    post_also_free: z3.BoolRef | None = None  # where the hint after a free is free besides its own metadata

    def holds_after(self, name: str, B: int) -> z3.BoolRef:
        return md_invariant(name, self.post, B, self.post_also_free)


def compose54(variant: str, op: str, B: int, N: int, index: int = 0,
              assumed: tuple[str, ...] = CHUNK_MD_INVARIANTS) -> Composed54:
    """The full scan from any chunk ``refresh_pre`` allows; or a free inside block ``index`` from such a chunk
    whose ``chunk_md`` also meets the invariants ``assumed``: the block changes by the encoder's own
    ``pcpu_block_update`` of the freed run, whose place among the old runs is what blockB's
    ``free-same-block-runs`` proves (``abstraction.freed_block``), then ``pcpu_free_area``'s chunk part
    (``chunk_md.first_free`` lowered to the area, the variant's refresh test, the full scan or its update)."""
    geometry = Geometry(B, N, tuple(range(N)))
    enc = subject(variant).require_encoding()(geometry)
    assert isinstance(enc, SymLinux54), f"{variant} does not keep 5.2's blocks"
    pre = fresh_chunk54(geometry, "pre")
    pre = pre.set(alloc_map=z3.BitVecVal(0, 1), bound_map=z3.BitVecVal(0, 1))  # no bits: metadata only
    if op == REFRESH_FULL_OP:
        return Composed54(pre, enc.pcpu_chunk_refresh_hint(pre, True), refresh_pre(pre, B), None)
    f = FreeArea.fresh(index)
    _, holds = freed_block(pre.md_blocks[index], f, B)
    md, here = pre.chunk_md, I(index)
    blocks = tuple(enc.pcpu_block_update(b, f.start, f.end) if k == index else b for k, b in enumerate(pre.md_blocks))
    freed = pre.set(md_blocks=blocks, chunk_md=md.set(first_free=smin(md.first_free, I(index * B) + f.lo)))
    post = enc.pcpu_chunk_refresh_hint(freed, True).merge(
        enc.pcpu_free_refreshes_chunk(freed, here, here, f.start, f.end),
        enc.pcpu_free_update_chunk_md(freed, here, f.start, f.end))
    # the bits [start, lo) were free before the free: first_free is not past them either
    before_area = z3.Implies(f.start < f.lo, md.first_free <= I(index * B) + f.start)
    chunk_ok = [md_invariant(n, pre, B) for n in assumed]
    # a free frees only: a run the old metadata showed free, and the freed run, are free after it
    hs, h = post.chunk_md.contig_hint_start, post.chunk_md.contig_hint
    also_free = z3.Or(run_is_free(pre.md_blocks, B, hs, h),
                      z3.And(hs >= I(index * B) + f.start, hs + h <= I(index * B) + f.end))
    return Composed54(pre, post, z3.And(refresh_pre(pre, B), holds, before_area, *chunk_ok), f, also_free)


# -- replay ------------------------------------------------------------------------------------------


def _md(model: z3.ModelRef, sym: SymBlockMd) -> PcpuBlockMd:
    return PcpuBlockMd(*(signed(model, getattr(sym, f)) for f in RELEASE_BLOCK_FIELDS))


@dataclass(frozen=True)
class Concrete:
    """A counterexample's chunk on the model, and the freed allocation's bit offset and size (0: none)."""

    alloc: Linux54
    chunk: PcpuChunk54
    bit_off: int
    bits: int


def concrete_chunk(variant: str, model: z3.ModelRef, c: Composed54, B: int) -> Concrete:
    """The chunk a counterexample describes, on the model: each block's bits realise its metadata, with no
    scan hint (the scan reads none), the freed block's also free on its freed run's two sides, the area an
    allocation; ``chunk_md`` as the solver left it."""
    N = len(c.pre.md_blocks)
    alloc = subject(variant).model(B, N)
    assert isinstance(alloc, Linux54), f"{variant} does not keep 5.2's blocks"
    chunk = alloc.pcpu_alloc_chunk()
    bits, bit_off, size = 0, -1, 0
    for k, sym in enumerate(c.pre.md_blocks):
        md = replace(_md(model, sym), scan_hint=0, scan_hint_start=0)
        chunk.md_blocks.blocks[k] = md
        block = realise54(md, B)
        if c.free is not None and k == c.free.index:
            lo, hi, start, end = (signed(model, t) for t in (c.free.lo, c.free.hi, c.free.start, c.free.end))
            block &= ~((((1 << (lo - start)) - 1) << start) | (((1 << (end - hi)) - 1) << hi))
            bit_off, size = k * B + lo, hi - lo
            chunk.bound_map.set_bit(bit_off)
            chunk.bound_map.set_bit(bit_off + size)
            chunk.allocations[bit_off] = size
        bits |= block << (k * B)
    chunk.alloc_map.value = bits
    chunk.free_bytes = (N * B - bits.bit_count()) * PCPU_MIN_ALLOC_SIZE
    chunk.chunk_md = _md(model, c.pre.chunk_md)
    return Concrete(alloc, chunk, bit_off, size)


def _describe(chunk: PcpuChunk54) -> str:
    md = chunk.chunk_md
    return (f"chunk_md contig {md.contig_hint}@{md.contig_hint_start} scan {md.scan_hint}@{md.scan_hint_start}"
            f" first_free {md.first_free}; md " + "; ".join(
                f"[{k}] {b.contig_hint}@{b.contig_hint_start} l{b.left_free} r{b.right_free} ff{b.first_free}"
                for k, b in enumerate(chunk.md_blocks)))


def _unmet(alloc: Linux54, chunk: PcpuChunk54, assumed: tuple[str, ...]) -> list[str]:
    """What the query assumed, concretely: the eleven block invariants of each block, ``refresh_pre``'s
    invariants of ``chunk_md``, and the chunk invariants ``assumed``."""
    found = [f"{name}: {m}" for name in BLOCK_INVARIANTS for field, m in invariant(name).check(alloc, chunk)
             if field.startswith("md_blocks[")]
    found += [m for name in ("first-free-not-above-first-free-bit", "block-nr-bits", "hints-inside-their-bits",
                             "scan-hint-below-contig-hint")
              for field, m in invariant(name).check(alloc, chunk) if field.startswith("chunk_md")]
    return found + [f"{name}: {m}" for name in assumed for _, m in invariant(name).check(alloc, chunk)]


def _on_c(source: KernelSource, B: int, cc: Concrete, bits: int, blocks: list[PcpuBlockMd],
          md: PcpuBlockMd) -> PcpuBlockMd:
    """``chunk_md`` after the same step on the C build, from the chunk before it (``bits``, ``blocks``, ``md``):
    the full scan, or the free's hint update on the chunk with the area cleared and ``first_free`` lowered, as
    ``pcpu_free_area`` does before calling it."""
    if cc.bits == 0:
        return c_chunk_md_after(source, B, bits, blocks, md, "r 1")
    cleared = bits & ~(((1 << cc.bits) - 1) << cc.bit_off)
    lowered = replace(md, first_free=min(md.first_free, cc.bit_off))
    return c_chunk_md_after(source, B, cleared, blocks, lowered, f"v {cc.bit_off} {cc.bits}")


def replay(variant: str, name: str, model: z3.ModelRef, c: Composed54, B: int, assumed: tuple[str, ...] = (),
           source: KernelSource | None = None) -> tuple[Verdict, str, dict[str, object]]:
    """VIOLATED when the model's step (the full scan, or ``pcpu_free_area``), from the concrete chunk (which
    meets what was assumed), breaks ``name``, and, given a kernel ``source``, its C build's leaves the same
    ``chunk_md`` (NONCONFORMANT if not)."""
    cc = concrete_chunk(variant, model, c, B)
    alloc, chunk = cc.alloc, cc.chunk
    before, md_before = _describe(chunk), replace(chunk.chunk_md)
    found: dict[str, object] = {"alloc_map": format(chunk.alloc_map.value, f"0{chunk.alloc_map.nbits}b")[::-1],
                                "chunk_md": vars(md_before)}
    bits_before, blocks_before = chunk.alloc_map.value, [replace(b) for b in chunk.md_blocks]
    unmet = _unmet(alloc, chunk, assumed)
    if cc.bits:
        found["freed_bit_off"] = cc.bit_off
        before += f"; free of bits [{cc.bit_off}, {cc.bit_off + cc.bits})"
        alloc.pcpu_free_area(chunk, cc.bit_off * PCPU_MIN_ALLOC_SIZE)
    else:
        alloc.pcpu_chunk_refresh_hint(chunk, True)
    broken = [m for _, m in invariant(name).check(alloc, chunk)]
    if unmet:
        return Verdict.SPURIOUS, f"the concrete chunk breaks the precondition ({'; '.join(unmet[:3])}): {before}", found
    if not broken:
        return Verdict.SPURIOUS, f"the model keeps {name} on the concrete chunk: {before}", found
    detail = (f"{'; '.join(broken)}; a counterexample to the step, not a trace from a new chunk; before: {before};"
              f" after: {_describe(chunk)}")
    if source is None:
        return Verdict.VIOLATED, detail, found
    found["c_source"] = str(source.percpu_c)
    try:
        on_c = _on_c(source, B, cc, bits_before, blocks_before, md_before)
    except BlockStepError as e:  # the model ran the step and the C did not (a sanitizer report, say)
        return Verdict.NONCONFORMANT, f"the model and {source.percpu_c} disagree: {e}; {detail}", found
    if on_c != chunk.chunk_md:
        return (Verdict.NONCONFORMANT, f"the model and {source.percpu_c} disagree: the C's chunk_md after is"
                f" {vars(on_c)}; {detail}", found)
    return Verdict.VIOLATED, f"{detail}; the same on {source.percpu_c}", found


# -- rows --------------------------------------------------------------------------------------------


def prove_composed54(variant: str, name: str, op: str, B: int, N: int, options: SolverOptions,
                     assumed: tuple[str, ...] = CHUNK_MD_INVARIANTS, source: KernelSource | None = None) -> Result:
    """One row: the full scan's one query, or the free's, one per index of the freed block; PROVED when every
    query is unsat and every case's assumptions are satisfiable, a sat replayed (``replay``)."""
    cases = [compose54(variant, op, B, N, k, assumed) for k in (range(N) if op == FREE_OP else range(1))]
    vacuity = check_all([[c.assumptions] for c in cases], options)
    answers = check_all([[c.assumptions, z3.Not(c.holds_after(name, B))] for c in cases], options)
    info: dict[str, object] = {"solver": "+".join(sorted({a.solver for a in answers})),
                               "solvers": {f"case {i}": a.to_json() for i, a in enumerate(answers)}}
    if op == FREE_OP:
        info["assumed"] = list(assumed)

    def row(verdict: Verdict, detail: str = "", found: dict[str, object] | None = None) -> Result:
        extra = info if found is None else {**info, "counterexample": found}
        return Result(variant, block_label(B, N), name, op, verdict, sum(a.seconds for a in answers), detail,
                      extra=extra)

    if any(v.status == "unsat" for v in vacuity):
        return row(Verdict.VACUOUS, "the assumptions are unsatisfiable")
    for case, answer in zip(cases, answers, strict=True):
        if answer.status == "sat" and answer.model is not None:
            return row(*replay(variant, name, answer.model, case, B, assumed if op == FREE_OP else (), source))
    undecided = [a for a in vacuity if a.status != "sat"] + [a for a in answers if a.status != "unsat"]
    if undecided:
        return row(Verdict.UNKNOWN, "; ".join(a.reason for a in undecided))
    return row(Verdict.PROVED)


def run_release_composed_suite(variant: str, B: int, N: int, options: SolverOptions,
                               wanted: frozenset[str] | None = None,
                               progress: Callable[[Result], None] | None = None,
                               source: KernelSource | None = None) -> list[Result]:
    """The full scan's rows, then the free's with ``compose.houdini`` over the five invariants."""
    if wanted is not None and not wanted & set(CHUNK_MD_INVARIANTS):
        return []
    results = [prove_composed54(variant, name, REFRESH_FULL_OP, B, N, options, source=source)
               for name in CHUNK_MD_INVARIANTS if wanted is None or name in wanted]
    for r in results:
        if progress is not None:
            progress(r)
    settled = houdini(CHUNK_MD_INVARIANTS,
                      lambda name, assumed: prove_composed54(variant, name, FREE_OP, B, N, options, assumed, source))
    for name in CHUNK_MD_INVARIANTS:
        if wanted is None or name in wanted:
            results.append(settled[name])
            if progress is not None:
                progress(results[-1])
    return results
