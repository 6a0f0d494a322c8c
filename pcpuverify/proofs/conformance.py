"""Conformance: the encoded transition, evaluated on a concrete state, must equal what ``model/`` computes.

A proof about an encoding that disagrees with the reference proves nothing,
so every proof run starts with a quick version of this check and refuses to
report PROVED when it fails.  After a step that wrote outside a bitmap the
kernel state is undefined (memory was corrupted), so such steps are compared
on the out-of-bounds flags and the returned offset only.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import z3

from pcpuverify.invariants.base import ChunkSnapshot
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Op
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import Reference, StepResult
from pcpuverify.model.state import BITMAP_FIELDS, BLOCK_FIELDS, INT_FIELDS
from pcpuverify.proofs.evaluator import UNSIGNED, Evaluator, StepValues, field_terms, signed_value
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.symbolic.release_state import SymReleaseChunk, release_layout
from pcpuverify.symbolic.state import SymChunk, block_key, constant_chunk, ghost_width
from pcpuverify.symbolic.subjects import subject


def model_fields(ref: Reference) -> dict[str, int | bool]:
    """The dynamic chunk of ``ref`` flattened to the fields its symbolic chunk has."""
    chunk, alloc = ref.chunks["dynamic"], ref.alloc
    gw = ghost_width(ref.geometry)
    g_start = g_used = 0
    for off, bits in chunk.allocations.items():
        g_start |= (1 << off) if off < gw else 0
        g_used |= ((1 << bits) - 1) << off
    ghosts = {"g_start": g_start, "g_used": g_used & ((1 << gw) - 1)}
    layout = release_layout(chunk)
    if layout is not None:
        release: dict[str, int | bool] = {f: getattr(chunk, f).value for f in BITMAP_FIELDS}
        release.update({f: getattr(chunk, f) for f in layout.chunk_fields if f != "pcpu_nr_empty_pop_pages"})
        release.update(pcpu_nr_empty_pop_pages=alloc.pcpu_nr_empty_pop_pages, **ghosts)
        for name in layout.singles:
            for f in layout.block_fields:
                release[f"{name}.{f}"] = getattr(getattr(chunk, name), f)
        for i, block in enumerate(chunk.md_blocks):
            for f in layout.block_fields:
                release[f"md_blocks[{i}].{f}"] = getattr(block, f)
        return release
    out: dict[str, int | bool] = {f: getattr(chunk, f).value for f in BITMAP_FIELDS}
    out.update({f: getattr(chunk, f) for f in INT_FIELDS})
    out.update(pcpu_nr_empty_pop_pages=alloc.pcpu_nr_empty_pop_pages, **ghosts)
    for i, block in enumerate(chunk.md_blocks):
        for f in BLOCK_FIELDS:
            out[block_key(i, f)] = getattr(block, f)
    return out


def symbolic_of(ref: Reference) -> SymChunk | SymReleaseChunk:
    """The dynamic chunk of ``ref`` as a symbolic chunk of constants, in its release's layout or the posting's."""
    values = {k: int(v) for k, v in model_fields(ref).items()}
    layout = release_layout(ref.chunks["dynamic"])
    if layout is not None:
        return layout.constant(ref.geometry, values)  # type: ignore[no-any-return]
    return constant_chunk(ref.geometry, values)


def _value(term: z3.ExprRef, signed: bool = True) -> int | bool:
    """A constant term's value: C ints signed, bitmaps unsigned."""
    v = z3.simplify(term)
    if z3.is_true(v) or z3.is_false(v):
        return z3.is_true(v)
    if not z3.is_bv_value(v):
        raise ValueError(f"encoding did not reduce to a constant: {v}")
    return signed_value(v.size(), v.as_long(), signed)


def evaluate(chunk: SymChunk | SymReleaseChunk) -> dict[str, int | bool]:
    """A chunk of constants' values by flat name (``model_fields``' keys)."""
    return {name: _value(term, signed=name not in UNSIGNED) for name, term in field_terms(chunk).items()}


@dataclass(frozen=True)
class Mismatch:
    """A field on which the encoding and the reference disagree after one op."""

    op: Op
    field: str
    model: int | bool
    encoding: int | bool

    def describe(self) -> str:
        return f"after {self.op.describe()}: {self.field} is {self.model} in model/ but {self.encoding} encoded"


def evaluator_for(ref: Reference, encoding: type[SymPercpu] | None = None) -> Evaluator:
    """The terms of ``encoding`` (default: the subject's) on ``ref``'s geometry, ready to evaluate.

    Built once per encoding and chunk size: compiling a transition costs a hundred times evaluating it, and
    callers such as the release conformance walks compare thousands of steps one ``compare_step`` at a time.
    """
    g = ref.geometry
    return _evaluator(encoding or subject(ref.variant).require_encoding(), g.block_bits, g.nr_pages)


@functools.lru_cache(maxsize=16)
def _evaluator(encoding: type[SymPercpu], block_bits: int, nr_pages: int) -> Evaluator:
    """One ``Evaluator`` per chunk size: the encoding never reads which pages a geometry populates at creation
    (the populated bitmap is a state field), so every populated set of a size shares its terms."""
    return Evaluator(encoding, Geometry(block_bits, nr_pages, tuple(range(nr_pages))))


def compare_step(ref: Reference, op: Op, encoding: type[SymPercpu] | None = None,
                 step: StepValues | None = None) -> list[Mismatch]:
    """Apply ``op`` to ``ref`` (mutating it) and to its encoding; list every field that differs.

    ``encoding``: default the subject's; ``step``: ``op`` already evaluated on ``ref``'s state (evaluated here
    on ``encoding``'s terms when not given).
    """
    if step is None:
        step = evaluator_for(ref, encoding).step(model_fields(ref), op)
    result = ref.apply(op)
    found: list[Mismatch] = []
    oob = bool(result.accesses)
    oob_write = any(a.write for a in result.accesses)
    if step.oob != oob:
        found.append(Mismatch(op, "oob", oob, step.oob))
    if step.oob_write != oob_write:
        found.append(Mismatch(op, "oob_write", oob_write, step.oob_write))
    if isinstance(op, Alloc):
        model_off = -1 if result.bit_off is None else result.bit_off
        if step.bit_off != model_off:
            found.append(Mismatch(op, "bit_off", model_off, step.bit_off))
    if not step.unrolled:
        found.append(Mismatch(op, "unrolled", True, False))
    if oob_write:
        return found
    expected = model_fields(ref)
    found += [Mismatch(op, f, expected[f], step.post[f]) for f in expected if expected[f] != step.post[f]]
    return found


def compare_invariants(ref: Reference, before: Reference, op: Op, step_result: StepResult,
                       evaluator: Evaluator | None = None, step: StepValues | None = None) -> list[str]:
    """Invariants whose Z3 predicate disagrees with the concrete one on ``before --op--> ref``.

    ``ref`` is the state after ``op``, ``before`` a copy of the state before; ``evaluator``: the subject's
    terms (built here when not given); ``step``: ``op`` already evaluated on ``before``'s state.
    """
    if any(a.write for a in step_result.accesses):
        return []
    evaluator = evaluator or evaluator_for(ref)
    chunk = ref.chunks["dynamic"]
    on_state = evaluator.state_invariants(model_fields(ref), oob=bool(step_result.accesses))
    problems = []
    for inv in evaluator.state_invs:
        concrete = not inv.violations(ref.alloc, chunk)
        if on_state[inv.name] != concrete:
            problems.append(f"{inv.name}: concrete {concrete}, Z3 {not concrete} after {op.describe()}")
    on_step = (step or evaluator.step(model_fields(before), op)).step_invariants
    snapshot = ChunkSnapshot.of(before.chunks["dynamic"])
    for inv in evaluator.step_invs:
        concrete = not inv.violations(ref.alloc, snapshot, step_result, chunk)
        if on_step[inv.name] != concrete:
            problems.append(f"{inv.name}: concrete {concrete}, Z3 {not concrete} on {op.describe()}")
    return problems


def quick_conformance(variant: str, geometry: Geometry, steps: int, seed: int) -> str | None:
    """Random walks from new chunks (all pages, none, every other one populated): the first disagreement, if any.

    Checks transitions (``compare_step``) and the invariants' two sides
    (``compare_invariants``); a walk restarts after a step out of bounds.
    """
    rng = random.Random(f"{seed}:{variant}:{geometry.name}")
    layouts = [geometry.populated, (), tuple(range(0, geometry.nr_pages, 2))]
    evaluator = Evaluator(subject(variant).require_encoding(), geometry)  # the terms read no populated layout
    done = 0
    while done < steps:
        g = Geometry(geometry.block_bits, geometry.nr_pages, layouts[done % len(layouts)])
        ref = Reference(variant, g, ChunkInit())
        for _ in range(8):
            op = random_op(ref, rng)
            before = ref.copy()
            step = evaluator.step(model_fields(ref), op)  # once, for the fields and for the invariants
            mismatches = compare_step(ref, op, step=step)
            done += 1
            if mismatches:
                return mismatches[0].describe()
            after = before.copy()
            result = after.apply(op)
            problems = compare_invariants(after, before, op, result, evaluator, step)
            if problems:
                return problems[0]
            if any(a.write for a in result.accesses) or done >= steps:
                break
    return None
