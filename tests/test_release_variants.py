"""The release variants (linux-4.14, linux-5.4, mainline) on the model: random traces, their findings, their dumps.

Fidelity against the C builds of the same releases is tests/test_release_fidelity.py.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from pcpuverify.counterexamples.explore import explore
from pcpuverify.invariants.applicability import APPLIES_TO, SCAN_HINT, V4_14, missing_from_table
from pcpuverify.invariants.check import check_state, check_step, first_violation
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit, FirstChunkInit
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import load_trace

RELEASES = ("linux-4.14", "linux-5.4", "mainline")
TRACES = sorted((Path(__file__).parent / "release_traces").glob("*.json"))

# What the random traces below break on each release: every one a finding, minimised in
# tests/release_traces/ (and identical on the C build of the release, at every step).
BROKEN: dict[str, frozenset[str]] = {
    "linux-4.14": frozenset({
        "bitmap-access-in-bounds",  # pcpu_alloc_area's window is not clipped to the bitmap
        "chunk-hint-never-above-available",  # the free path's pcpu_chunk_update(start, block contig_hint)
        "chunk-hint-accurate-in-one-block",  # the alloc path refreshes only if the area *starts* in the hint
        "nr-empty-pop-pages-matches-bitmap",  # counted only by the chunk refresh
    }),
    "linux-5.4": frozenset({
        "chunk-hint-accurate-in-one-block",  # pcpu_block_update(&chunk->chunk_md, chunk offset, block offset)
        "chunk-hint-off-by-at-most-a-page",  # the same, twice
        "block-left-right-free-exact",  # pcpu_block_refresh_hint loses right_free promoting the scan_hint
        "scan-hint-before-contig-hint",  # pcpu_block_update: an equal area before the contig hint becomes scan_hint
    }),
}
# two of the three the 1x8 proofs added, broken by 5.2's code on a block (gallery 14 to 16); their traces are
# in tests/proof_traces/, not release_traces/
ON_A_BLOCK = frozenset({"scan-hint-clear-of-contig-hint", "scan-hint-maximal"})
# the lemmas asked of chunk_md (release_hints.py), broken by 5.2's chunk_md updates: a free outside block 0 reaches
# it block relative (finding 12) and a free reaching the next block's free bits reaches it clipped (gallery 17)
ON_CHUNK_MD = frozenset({"chunk-md-scan-hint-clear-of-contig-hint", "chunk-md-scan-hint-maximal",
                         "chunk-md-contig-hint-longest", "chunk-md-contig-hint-maximal",
                         "chunk-hint-covers-every-block"})
BROKEN["mainline"] = BROKEN["linux-5.4"]


def _walk(variant: str, geometry: str, seed: int, length: int) -> tuple[Reference, set[str]]:
    ref = Reference(variant, Geometry.parse(geometry), ChunkInit())
    rng = random.Random(seed)
    broken = {v.invariant for v in check_state(ref)}
    for _ in range(length):
        _, found = check_step(ref, random_op(ref, rng))
        broken |= {v.invariant for v in found}
    return ref, broken


@pytest.mark.parametrize("variant", RELEASES)
@pytest.mark.slow
def test_random_traces_run_and_break_only_the_known_invariants(variant: str) -> None:
    """2,000 random traces of 30 ops (1,000 at 2x8, 1,000 at 3x8); every invariant of the layout after every step."""
    broken: set[str] = set()
    for geometry in ("2x8", "3x8"):
        for seed in range(1000):
            broken |= _walk(variant, geometry, seed, 30)[1]
    assert broken == BROKEN[variant] | (ON_A_BLOCK | ON_CHUNK_MD if variant != "linux-4.14" else frozenset())


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_finding_violated_at_its_last_step(path: Path) -> None:
    trace = load_trace(path)
    assert trace.violates is not None and trace.violates in BROKEN[trace.variant]
    assert first_violation(trace, trace.violates) == len(trace.ops) - 1


# The same claim under 5.2's name, where 2017's does not apply (applicability.py).
SCAN_HINT_NAME = {"nr-empty-pop-pages-matches-bitmap": "nr-empty-pop-pages-by-block"}


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_findings_follow_the_history(path: Path) -> None:
    """A 4.14 trace holds on 5.4 and mainline (the 5.2 series fixed each); a 5.4 trace holds on 4.14 (5.2 made it).

    ``scan-hint-before-contig-hint`` has no 4.14 counterpart: 4.14 has no scan_hint.
    """
    trace = load_trace(path)
    assert trace.violates is not None
    if trace.variant == "linux-4.14":
        claim = SCAN_HINT_NAME.get(trace.violates, trace.violates)
        for later in ("linux-5.4", "mainline"):
            assert first_violation(replace(trace, variant=later, violates=claim), claim) is None
    elif trace.violates != "scan-hint-before-contig-hint":
        assert first_violation(replace(trace, variant="linux-4.14"), trace.violates) is None


def test_every_finding_has_a_trace() -> None:
    assert {p.stem for p in TRACES} == {f"{v}__{inv}" for v, invs in BROKEN.items() for inv in invs}


def test_the_applicability_table_lists_every_invariant() -> None:
    assert missing_from_table() == []


def test_the_release_invariants_are_checked_on_their_layouts() -> None:
    """A state that breaks a 5.2 claim is reported on linux-5.4 (not a table that checks nothing)."""
    ref = Reference("linux-5.4", Geometry.parse("1x8"), ChunkInit())
    ref.chunks["dynamic"].md_blocks[0].scan_hint = 9
    assert "scan-hint-below-contig-hint" in {v.invariant for v in check_state(ref)}
    assert all(APPLIES_TO[name] & (V4_14 | SCAN_HINT) for name in ("block-contig-hint-exact", "scan-hint-region-free"))


def test_dumps_carry_each_release_field_names() -> None:
    dumps = {v: Reference(v, Geometry.parse("2x8"), ChunkInit()).dump()["chunks"]["dynamic"] for v in RELEASES}
    assert {"free_bytes", "contig_bits", "contig_bits_start", "first_bit"} <= set(dumps["linux-4.14"])
    assert "chunk_md" in dumps["linux-5.4"] and "contig_bits" not in dumps["linux-5.4"]
    assert set(dumps["linux-5.4"]["md_blocks"][0]) == {  # type: ignore[index]
        "scan_hint", "scan_hint_start", "contig_hint", "contig_hint_start", "left_free", "right_free",
        "first_free", "nr_bits"}
    assert set(dumps["mainline"]) == set(dumps["linux-5.4"]) | {"isolated"}


@pytest.mark.parametrize("variant", RELEASES)
def test_first_chunk_init_is_refused_in_one_line(variant: str) -> None:
    with pytest.raises(OpError, match="first_chunk init is not ported"):
        Reference(variant, Geometry.parse("1x8"), FirstChunkInit(static_size=8, reserved_size=0, dyn_size=24))


def test_mainline_is_5_4_but_for_the_free_slot_and_isolated() -> None:
    """The allocator cores agree: same returns and dumps, except a wholly free chunk's slot (one higher) and ``isolated``."""
    for seed in range(200):
        a = Reference("linux-5.4", Geometry.parse("2x8"), ChunkInit())
        b = Reference("mainline", Geometry.parse("2x8"), ChunkInit())
        rng = random.Random(seed)
        for _ in range(30):
            op = random_op(a, rng)
            assert a.apply(op).bit_off == b.apply(op).bit_off
            da, db = a.dump()["chunks"]["dynamic"], b.dump()["chunks"]["dynamic"]  # type: ignore[index]
            assert db.pop("isolated") is False
            slot_a, slot_b = da.pop("slot"), db.pop("slot")
            # 5.4's free slot is pcpu_nr_slots - 1; 7.1.3's is pcpu_free_slot, one higher
            assert slot_b == (b.alloc.pcpu_free_slot if slot_a == a.alloc.pcpu_nr_slots - 1 else slot_a)  # type: ignore[attr-defined]
            assert da == db


# Breadth first over every op from every state of a 2x4 chunk, 4 ops deep: the shortest
# trace of each finding (its length), so the minimised ones above are as short as any.
SHORTEST_2X4: dict[str, dict[str, int]] = {
    "linux-4.14": {
        "bitmap-access-in-bounds": 1,
        "chunk-hint-accurate-in-one-block": 4,
        "chunk-hint-never-above-available": 4,
        "nr-empty-pop-pages-matches-bitmap": 4,
    },
    "linux-5.4": {
        "block-left-right-free-exact": 3,
        "chunk-hint-accurate-in-one-block": 3,
        "scan-hint-before-contig-hint": 4,
        # none of the three the release proofs added is reached on a block in 4 ops of 2x4 (gallery 16's trace at
        # 1x8 has 5); their chunk_md twins, and the two chunk_md lemmas, break in 3 (ON_CHUNK_MD)
        **{name: 3 for name in ON_CHUNK_MD},
    },
}
SHORTEST_2X4["mainline"] = SHORTEST_2X4["linux-5.4"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", RELEASES)
def test_exhaustive_search_finds_the_shortest_traces(variant: str) -> None:
    found = explore(variant, Geometry.parse("2x4"), 4)
    assert found.complete
    assert {name: len(trace.ops) for name, trace in found.shortest.items()} == SHORTEST_2X4[variant]


@pytest.mark.parametrize("variant", RELEASES)
def test_a_copy_is_independent_and_keys_alike(variant: str) -> None:
    ref = Reference(variant, Geometry.parse("2x8"), ChunkInit())
    rng = random.Random(1)
    for _ in range(10):
        ref.apply(random_op(ref, rng))
    twin, before = ref.copy(), ref.dump()
    assert twin.key() == ref.key() and twin.dump() == before
    chunk = twin.chunks["dynamic"]
    chunk.alloc_map.value ^= 1
    chunk.md_blocks[0].contig_hint += 1
    if hasattr(chunk, "chunk_md"):
        chunk.chunk_md.contig_hint += 1  # type: ignore[union-attr]
    assert ref.dump() == before
    for changed in ("alloc_map", "md_blocks", *(("chunk_md",) if hasattr(chunk, "chunk_md") else ())):
        assert twin.dump()["chunks"]["dynamic"][changed] != before["chunks"]["dynamic"][changed]  # type: ignore[index]
    assert twin.key() != ref.key()
