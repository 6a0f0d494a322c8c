"""Conformance of the release encodings (symbolic/encode_linux_4_14.py, encode_linux_5_4.py,
encode_mainline_fixed.py) with model/.

Two kinds of states, as tests/test_conformance.py does for the 2017 encodings:

* whole operations on walks of ``random_op`` from a new chunk (``compare_step``: every field of the
  release's layout, the return value, the out-of-bounds flags; ``compare_invariants``: each invariant's Z3
  predicate equals its concrete check on the state after the step);
* ``pcpu_block_update`` alone on arbitrary block values, reachable or not, since every hint path
  of the releases goes through it and the proofs' counterexamples to induction start anywhere.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcpuverify.invariants.base import REGISTRY
from pcpuverify.model.chunk import PcpuBitmapMd
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.linux_4_14 import Linux414, PcpuChunk414
from pcpuverify.model.linux_5_4 import PcpuBlockMd
from pcpuverify.model.ops import ChunkInit
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import Reference
from pcpuverify.proofs.conformance import (
    _value,
    compare_invariants,
    compare_step,
    evaluator_for,
    model_fields,
    quick_conformance,
)
from pcpuverify.symbolic.bv import I
from pcpuverify.model.state import BLOCK_FIELDS
from pcpuverify.symbolic.encode_linux_4_14 import SymLinux414
from pcpuverify.symbolic.release_state import (
    CHUNK414_FIELDS,
    RELEASE_BLOCK_FIELDS,
    SymBlockMd,
    SymChunk54,
    SymChunk414,
)
from pcpuverify.symbolic.state import SymBlock
from pcpuverify.symbolic.subjects import subject

SCAN_HINT_VARIANTS = ("linux-5.4", "mainline", "mainline-fixed")
VARIANTS = ("linux-4.14", *SCAN_HINT_VARIANTS)


def test_release_state_has_the_model_fields() -> None:
    """SymBlockMd holds every field of the model's ``pcpu_block_md``, in its order (a field added there must reach it);
    SymChunk414 every int of 4.14's chunk, and the posting's blocks."""
    assert tuple(f.name for f in dataclasses.fields(SymBlockMd)) == RELEASE_BLOCK_FIELDS
    assert {f.name for f in dataclasses.fields(SymChunk54)} >= {"chunk_md", "free_bytes", "md_blocks"}
    ints = {f.name for f in dataclasses.fields(PcpuChunk414) if f.type == "int"} - {"nr_pages"}
    assert ints == set(CHUNK414_FIELDS) - {"pcpu_nr_empty_pop_pages"}
    assert ints <= {f.name for f in dataclasses.fields(SymChunk414)}
    assert tuple(f.name for f in dataclasses.fields(SymBlock)) == BLOCK_FIELDS


@pytest.mark.parametrize(("variant", "spec"),
                         [(v, "2x8") for v in VARIANTS] + [("linux-5.4", "1x8"), ("linux-4.14", "3x4")])
def test_walks_conform(variant: str, spec: str) -> None:
    """Random walks (all pages, none and every other page populated at first): no field, flag or invariant differs."""
    assert quick_conformance(variant, Geometry.parse(spec), steps=8, seed=11) is None


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("spec", ("2x8", "3x8", "2x16"))
def test_long_walks_conform(variant: str, spec: str) -> None:
    """600 steps at each proved geometry (seconds each since the steps evaluate the proofs' own terms; the
    suites run 60 before every proof)."""
    assert quick_conformance(variant, Geometry.parse(spec), steps=600, seed=7) is None


@pytest.mark.parametrize("variant", SCAN_HINT_VARIANTS)
def test_walk_conformance_sees_a_wrong_encoding(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a refresh that leaves ``chunk_md.first_free`` one bit too high is caught."""
    enc = subject(variant).require_encoding()
    original = enc.pcpu_chunk_refresh_hint

    def broken(self, chunk, full_scan):  # type: ignore[no-untyped-def]
        out = original(self, chunk, full_scan)
        return out.set(chunk_md=out.chunk_md.set(first_free=out.chunk_md.first_free + 1))

    monkeypatch.setattr(enc, "pcpu_chunk_refresh_hint", broken)
    assert quick_conformance(variant, Geometry.parse("2x8"), steps=8, seed=11) is not None


def test_walk_conformance_sees_a_wrong_4_14_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail on 4.14's layout too: a chunk refresh that leaves ``contig_bits`` one bit too high."""
    original = SymLinux414.pcpu_chunk_refresh_hint

    def broken(self, chunk):  # type: ignore[no-untyped-def]
        out = original(self, chunk)
        return out.set(contig_bits=out.contig_bits + 1)

    monkeypatch.setattr(SymLinux414, "pcpu_chunk_refresh_hint", broken)
    assert quick_conformance("linux-4.14", Geometry.parse("2x8"), steps=8, seed=11) is not None


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_walks_conform_step_by_step(variant: str) -> None:
    """Walks at 2x8 from another seed, each step's invariants compared on both sides."""
    rng = random.Random(f"release:{variant}")
    g = Geometry.parse("2x8")
    for _ in range(2):
        ref = Reference(variant, g, ChunkInit())
        for _ in range(6):
            op = random_op(ref, rng)
            before = ref.copy()
            assert compare_step(ref, op) == []
            after = before.copy()
            result = after.apply(op)
            assert compare_invariants(after, before, op, result) == []
            if any(a.write for a in result.accesses):
                break


block_values = st.fixed_dictionaries({f: st.integers(0, 8) for f in RELEASE_BLOCK_FIELDS})


@pytest.mark.parametrize("variant", SCAN_HINT_VARIANTS)
@settings(max_examples=120, deadline=None, derandomize=True)
@given(values=block_values, start=st.integers(0, 8), length=st.integers(1, 8))
def test_pcpu_block_update_conforms(variant: str, values: dict[str, int], start: int, length: int) -> None:
    """The encoded ``pcpu_block_update`` equals the model's on any block values and any area."""
    model_cls, enc_cls = subject(variant).model, subject(variant).require_encoding()
    alloc = model_cls(8, 1)
    block = PcpuBlockMd(**values)
    alloc.pcpu_block_update(block, start, start + length)
    enc = enc_cls(Geometry.parse("1x8"))
    sym = enc.pcpu_block_update(SymBlockMd(*(I(values[f]) for f in RELEASE_BLOCK_FIELDS)), I(start), I(start + length))
    assert {f: _value(getattr(sym, f)) for f in RELEASE_BLOCK_FIELDS} == dataclasses.asdict(block)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(values=st.fixed_dictionaries({f: st.integers(0, 8) for f in BLOCK_FIELDS}), start=st.integers(0, 8),
       length=st.integers(1, 8))
def test_4_14_pcpu_block_update_conforms(values: dict[str, int], start: int, length: int) -> None:
    """4.14's encoded ``pcpu_block_update`` (the best-aligned tie) equals the model's on any block values and area."""
    block = PcpuBitmapMd(**values)
    Linux414(8, 1).pcpu_block_update(block, start, start + length)
    sym = SymLinux414(Geometry.parse("1x8")).pcpu_block_update(SymBlock(*(I(values[f]) for f in BLOCK_FIELDS)),
                                                                I(start), I(start + length))
    assert {f: _value(getattr(sym, f)) for f in BLOCK_FIELDS} == dataclasses.asdict(block)


@pytest.mark.parametrize("changes", [
    {"contig_hint_start": 7},  # an 8-bit contig hint from bit 7: past the block
    {"scan_hint": 3, "scan_hint_start": 6},
    {"first_free": 9},
    {},  # a new chunk's hints: inside
])
def test_hints_inside_their_bits_sees_a_hint_past_its_bits(changes: dict[str, int]) -> None:
    """The concrete check and the Z3 predicate of ``hints-inside-their-bits`` agree on hints no walk reaches."""
    ref = Reference("mainline", Geometry(8, 1, (0,)), ChunkInit())
    chunk = ref.chunks["dynamic"]
    for field, value in changes.items():
        setattr(chunk.md_blocks[0], field, value)
    concrete = REGISTRY["hints-inside-their-bits"].violations(ref.alloc, chunk)
    assert bool(concrete) == bool(changes)
    on_state = evaluator_for(ref).state_invariants(model_fields(ref), oob=False)
    assert on_state["hints-inside-their-bits"] is not bool(changes)


@pytest.mark.parametrize(("allocated", "changes", "broken"), [
    (0b00000000, {}, False),  # a new chunk: the whole block is its contig hint and its right_free
    (0b00000001, {}, True),  # bit 0 taken, the hints of a free block kept: the contig hint covers it
    (0b00000001, {"contig_hint": 7, "contig_hint_start": 1, "left_free": 0, "right_free": 7}, False),
    (0b10000000, {"contig_hint": 7, "contig_hint_start": 0, "right_free": 1}, True),  # right_free over bit 7
    (0b00001000, {"contig_hint": 4, "contig_hint_start": 4, "left_free": 3, "right_free": 4}, False),
    (0b00001000, {"contig_hint": 3, "contig_hint_start": 4, "left_free": 3, "right_free": 4}, False),  # short
    (0b00001000, {"contig_hint": 4, "contig_hint_start": 3, "left_free": 3, "right_free": 4}, True),
    (0b00001000, {"contig_hint": 4, "contig_hint_start": 4, "left_free": 3, "right_free": -1}, True),
    (0b00001000, {"contig_hint": 4, "contig_hint_start": 4, "left_free": 3, "right_free": 4,
                  "scan_hint": 2, "scan_hint_start": 0}, False),
    (0b00001000, {"contig_hint": 4, "contig_hint_start": 4, "left_free": 3, "right_free": 4,
                  "scan_hint": 2, "scan_hint_start": 2}, True),  # the scan hint over bit 3
])
def test_block_hints_on_free_bits_sees_a_hint_on_an_allocated_bit(allocated: int, changes: dict[str, int],
                                                                  broken: bool) -> None:
    """The concrete check and the Z3 predicate of ``block-hints-on-free-bits`` agree: a contig hint, a scan
    hint or a ``right_free`` over an allocated bit breaks it, a short or misplaced one on free bits does not."""
    ref = Reference("mainline", Geometry(8, 1, (0,)), ChunkInit())
    chunk = ref.chunks["dynamic"]
    chunk.alloc_map.value = allocated
    for field, value in changes.items():
        setattr(chunk.md_blocks[0], field, value)
    concrete = REGISTRY["block-hints-on-free-bits"].violations(ref.alloc, chunk)
    assert bool(concrete) == broken
    on_state = evaluator_for(ref).state_invariants(model_fields(ref), oob=False)
    assert on_state["block-hints-on-free-bits"] is not broken
