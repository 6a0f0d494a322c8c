"""5.2's ``chunk_md`` over N blocks seen only through their ``pcpu_block_md`` (the ``NxblockB`` rows of
``linux-5.4``, ``mainline`` and ``mainline-fixed``).

What is proved: ``pcpu_chunk_refresh_hint(chunk, true)``, the full scan
(5.4's and 7.1.3's free path, when a free spans blocks or frees a whole one;
``mainline-fixed``'s allocation too, its fix 9), leaves ``chunk_md``'s contig
hint as five chunk-hint invariants say.  It is proved for every chunk of N
blocks of B bits whose blocks' metadata ``release_abstraction.consistent54``
allows (which the eleven block invariants imply: blockB's row
``md-abstraction-sound``), and whose ``chunk_md.first_free`` is not past a
bit the metadata shows free (``first-free-not-above-first-free-bit`` of
``chunk_md``); ``chunk_md``'s other fields are anything in range.  The scan is
the encoder's own ``pcpu_chunk_refresh_hint``, which reads the blocks through
``pcpu_next_md_free_region`` only; so one proof covers 4 blocks of 1024 bits
without an alloc_map of 4096 bits.

The invariants are the project's own, restated over metadata: the chunk's
longest free run is ``abstraction.longest_run`` of its blocks (exact: each
block's contig hint is its longest run, its edges exact), a block's longest
run is its contig hint, and ``abstraction.run_is_free`` places a run.  A
counterexample is made concrete (``release_abstraction.realise54`` for each
block), replayed on the model's own ``pcpu_chunk_refresh_hint``, and judged
by the invariants' own concrete checks; given a kernel source, the C build's
own ``pcpu_chunk_refresh_hint`` runs on the same chunk and must leave the
same ``chunk_md`` (NONCONFORMANT if not).

Not covered here (the chunk suite at small geometries covers them): the scan
from a promoted scan hint (``full_scan`` false, the allocation's), the free's
``pcpu_block_update`` of ``chunk_md`` inside one block, ``chunk_md``'s scan
hint (the full scan keeps a stale one it meets no area before: the CTI of
``docs/releases.md``'s 2x16 section), ``nr_empty_pop_pages``, and reachability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import z3

from pcpuverify.invariants.check import invariant
from pcpuverify.kernel.block_step import BlockStepError, c_chunk_refresh
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE, Geometry
from pcpuverify.model.linux_5_4 import Linux54, PcpuBlockMd, PcpuChunk54
from pcpuverify.proofs.blocks.abstraction import longest_run, run_is_free
from pcpuverify.proofs.blocks.labels import block_label
from pcpuverify.proofs.blocks.release_abstraction import consistent54, realise54
from pcpuverify.proofs.blocks.release_contracts import BLOCK_INVARIANTS
from pcpuverify.proofs.blocks.state import signed
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions, check, check_all
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
RELEASE_COMPOSED_OPS = (REFRESH_FULL_OP,)


def md_invariant(name: str, chunk: SymChunk54, B: int) -> z3.BoolRef:
    """One chunk-hint invariant of ``chunk_md`` over the blocks' metadata."""
    blocks, h = chunk.md_blocks, chunk.chunk_md.contig_hint
    longest = longest_run(blocks, B)
    in_one_block = z3.Or(*[md.contig_hint == longest for md in blocks])
    return {
        "chunk-md-contig-hint-longest": longest <= h,
        "chunk-hint-never-above-available": z3.And(h <= longest,
                                                   run_is_free(blocks, B, chunk.chunk_md.contig_hint_start, h)),
        "chunk-hint-covers-every-block": z3.And(*[md.contig_hint <= h for md in blocks]),
        "chunk-hint-accurate-in-one-block": z3.Implies(z3.And(longest > 0, in_one_block), h == longest),
        "chunk-hint-off-by-at-most-a-page": longest - h <= B,
    }[name]


def refresh_pre(chunk: SymChunk54, B: int) -> z3.BoolRef:
    """Every block consistent; ``chunk_md`` in range, ``nr_bits`` the chunk's, and ``first_free`` at or before each
    bit the metadata shows free (a block's left edge, its contig hint's start)."""
    md, n = chunk.chunk_md, len(chunk.md_blocks) * B
    conds = [consistent54(b, B) for b in chunk.md_blocks]
    conds += [z3.And(getattr(md, f) >= 0, getattr(md, f) <= n) for f in RELEASE_BLOCK_FIELDS]
    conds.append(md.nr_bits == n)
    for k, b in enumerate(chunk.md_blocks):
        conds += [z3.Implies(b.left_free > 0, md.first_free <= k * B),
                  z3.Implies(b.contig_hint > 0, md.first_free <= k * B + b.contig_hint_start)]
    return z3.And(conds)


@dataclass(frozen=True)
class RefreshQuery:
    pre: SymChunk54
    post: SymChunk54
    assumptions: z3.BoolRef


def refresh_query(variant: str, B: int, N: int) -> RefreshQuery:
    geometry = Geometry(B, N, tuple(range(N)))
    enc = subject(variant).require_encoding()(geometry)
    assert isinstance(enc, SymLinux54), f"{variant} does not keep 5.2's blocks"
    pre = fresh_chunk54(geometry, "pre")
    pre = pre.set(alloc_map=z3.BitVecVal(0, 1), bound_map=z3.BitVecVal(0, 1))  # no bits: metadata only
    return RefreshQuery(pre, enc.pcpu_chunk_refresh_hint(pre, True), refresh_pre(pre, B))


# -- replay ------------------------------------------------------------------------------------------


def _md(model: z3.ModelRef, sym: SymBlockMd) -> PcpuBlockMd:
    return PcpuBlockMd(*(signed(model, getattr(sym, f)) for f in RELEASE_BLOCK_FIELDS))


def concrete_chunk(variant: str, model: z3.ModelRef, pre: SymChunk54, B: int) -> tuple[Linux54, PcpuChunk54]:
    """The chunk a counterexample describes, on the model: each block's bits realise its metadata, with no
    scan hint (the scan reads none); ``chunk_md`` as the solver left it."""
    N = len(pre.md_blocks)
    alloc = subject(variant).model(B, N)
    assert isinstance(alloc, Linux54), f"{variant} does not keep 5.2's blocks"
    chunk = alloc.pcpu_alloc_chunk()
    bits = 0
    for k, sym in enumerate(pre.md_blocks):
        md = replace(_md(model, sym), scan_hint=0, scan_hint_start=0)
        chunk.md_blocks.blocks[k] = md
        bits |= realise54(md, B) << (k * B)
    chunk.alloc_map.value = bits
    chunk.free_bytes = (N * B - bits.bit_count()) * PCPU_MIN_ALLOC_SIZE
    chunk.chunk_md = _md(model, pre.chunk_md)
    return alloc, chunk


def _describe(chunk: PcpuChunk54) -> str:
    md = chunk.chunk_md
    return (f"chunk_md contig {md.contig_hint}@{md.contig_hint_start} scan {md.scan_hint}@{md.scan_hint_start}"
            f" first_free {md.first_free}; md " + "; ".join(
                f"[{k}] {b.contig_hint}@{b.contig_hint_start} l{b.left_free} r{b.right_free} ff{b.first_free}"
                for k, b in enumerate(chunk.md_blocks)))


def _unmet(alloc: Linux54, chunk: PcpuChunk54) -> list[str]:
    """What the query assumed, concretely: the eleven block invariants of each block, and ``chunk_md``'s
    ``first_free``."""
    found = [f"{name}: {m}" for name in BLOCK_INVARIANTS for field, m in invariant(name).check(alloc, chunk)
             if field.startswith("md_blocks[")]
    return found + [m for field, m in invariant("first-free-not-above-first-free-bit").check(alloc, chunk)
                    if field == "chunk_md.first_free"]


def replay(variant: str, name: str, model: z3.ModelRef, q: RefreshQuery, B: int,
           source: KernelSource | None = None) -> tuple[Verdict, str, dict[str, object]]:
    """VIOLATED when the model's full scan, from the concrete chunk (which meets what was assumed), breaks
    ``name``, and, given a kernel ``source``, its C build's scan leaves the same ``chunk_md`` (NONCONFORMANT if
    not)."""
    alloc, chunk = concrete_chunk(variant, model, q.pre, B)
    before, md_before = _describe(chunk), replace(chunk.chunk_md)
    found: dict[str, object] = {"alloc_map": format(chunk.alloc_map.value, f"0{chunk.alloc_map.nbits}b")[::-1],
                                "chunk_md": vars(md_before)}
    unmet = _unmet(alloc, chunk)
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
        on_c = c_chunk_refresh(source, B, chunk.alloc_map.value, list(chunk.md_blocks), md_before, True)
    except BlockStepError as e:  # the model ran the scan and the C did not (a sanitizer report, say)
        return Verdict.NONCONFORMANT, f"the model and {source.percpu_c} disagree: {e}; {detail}", found
    if on_c != chunk.chunk_md:
        return (Verdict.NONCONFORMANT, f"the model and {source.percpu_c} disagree: the C's chunk_md after is"
                f" {vars(on_c)}; {detail}", found)
    return Verdict.VIOLATED, f"{detail}; the same on {source.percpu_c}", found


# -- rows --------------------------------------------------------------------------------------------


def run_release_composed_suite(variant: str, B: int, N: int, options: SolverOptions,
                               wanted: frozenset[str] | None = None,
                               progress: Callable[[Result], None] | None = None,
                               source: KernelSource | None = None) -> list[Result]:
    """Every invariant's row of the full scan: one vacuity check, then one query each (in parallel with
    ``options.jobs``); PROVED on unsat, a sat replayed on the model (and on ``source``'s C build if given).  A row's seconds are its own query's; the
    vacuity check is in its ``vacuity``."""
    names = [n for n in CHUNK_MD_INVARIANTS if wanted is None or n in wanted]
    if not names:
        return []
    q = refresh_query(variant, B, N)
    vacuity = check([q.assumptions], options)
    answers = check_all([[q.assumptions, z3.Not(md_invariant(n, q.post, B))] for n in names], options)
    results = []
    for name, answer in zip(names, answers, strict=True):
        info: dict[str, object] = {**answer.to_json(), "vacuity": vacuity.to_json()}
        found: dict[str, object] | None = None
        if vacuity.status == "unsat":
            verdict, detail = Verdict.VACUOUS, "the assumptions are unsatisfiable"
        elif vacuity.status != "sat":
            verdict, detail = Verdict.UNKNOWN, f"vacuity check: {vacuity.reason}"
        elif answer.status == "unsat":
            verdict, detail = Verdict.PROVED, ""
        elif answer.status == "sat" and answer.model is not None:
            verdict, detail, found = replay(variant, name, answer.model, q, B, source)
        else:
            verdict, detail = Verdict.UNKNOWN, answer.reason
        if found is not None:
            info["counterexample"] = found
        results.append(Result(variant, block_label(B, N), name, REFRESH_FULL_OP, verdict, answer.seconds, detail,
                              extra={k: v for k, v in info.items() if v is not None}))
        if progress is not None:
            progress(results[-1])
    return results
