"""Witnesses: a violation longer than the bounded check's depth, carried from a smaller geometry and replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pcpuverify.counterexamples.minimize import scaled_up
from pcpuverify.counterexamples.witness import carry, load_witnesses
from pcpuverify.invariants.check import first_violation
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.trace import load_trace

from tests.test_cli import pcpu_verify

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "tests" / "traces" / "gallery"
WITHIN = "chunk-contig-hint-within-a-block"
THREE_BLOCKS = GALLERY / f"v1__{WITHIN}.json"


def test_the_three_block_finding_is_longer_than_the_default_depth() -> None:
    trace = load_trace(THREE_BLOCKS)
    assert len(trace.ops) == 8
    assert first_violation(trace, WITHIN) == 7


@pytest.mark.parametrize("variant", ["v1", "v1-patch09"])
@pytest.mark.parametrize("block_bits", [4, 8, 16])
def test_carried_to_larger_blocks_it_still_breaks_the_invariant(variant: str, block_bits: int) -> None:
    carried = carry(load_witnesses([GALLERY]), variant, Geometry(block_bits, 3, ()), WITHIN, "free")
    assert carried is not None
    assert carried.trace.geometry.block_bits == block_bits and carried.trace.variant == variant
    assert first_violation(carried.trace, WITHIN) == len(carried.trace.ops) - 1


BREADTH_FIRST = ROOT / "tests" / "proof_traces" / "breadth-first"


@pytest.mark.parametrize("variant", ["mainline", "linux-5.4"])
def test_carried_to_more_pages_the_pages_it_lacks_are_added_as_the_geometry_populates_them(variant: str) -> None:
    """mainline's 8-operation witness on one 8-bit block (gallery 15) breaks block 0 alone, so on three pages it
    breaks the same invariant at the same step; the page it had stays as it was (not populated at first)."""
    name = "block-contig-hint-exact"
    witnesses = load_witnesses([BREADTH_FIRST / f"mainline__1x8__{name}__alloc.json"])
    assert witnesses[0].trace.geometry == Geometry(8, 1, ())
    carried = carry(witnesses, variant, Geometry(8, 3, (0, 1, 2)), name, "alloc")
    assert carried is not None and carried.trace.geometry == Geometry(8, 3, (1, 2))
    assert first_violation(carried.trace, name) == len(carried.trace.ops) - 1 == 7
    assert carry(witnesses, "mainline-fixed", Geometry(8, 3, (0, 1, 2)), name, "alloc") is None  # gallery 15's fix


def test_scaling_keeps_the_shape_in_blocks() -> None:
    scaled = scaled_up(load_trace(THREE_BLOCKS), "v1", 8)
    sizes = [op.bits for op in scaled.ops if hasattr(op, "bits")]
    assert sizes == [2, 6, 8, 4, 2]  # each size doubled with the block
    with pytest.raises(GeometryError):
        scaled_up(load_trace(THREE_BLOCKS), "v1", 6)


@pytest.mark.parametrize(
    ("variant", "geometry", "kind"),
    [
        ("fixed", Geometry(8, 3, ()), "free"),  # the fix removes it
        ("v1", Geometry(8, 2, ()), "free"),  # needs as many pages: three
        ("v1", Geometry(8, 3, ()), "alloc"),  # the last operation is a free, not an alloc
    ],
)
def test_no_witness_where_the_replay_does_not_show_it(variant: str, geometry: Geometry, kind: str) -> None:
    assert carry(load_witnesses([GALLERY]), variant, geometry, WITHIN, kind) is None


@pytest.mark.slow
def test_prove_reports_a_witnessed_violation_beyond_its_depth(tmp_path: Path) -> None:
    """Inside the project its regression traces are the witnesses; outside it there are none unless named."""
    args = ["prove", "--variant", "v1-patch09", "--geometry", "3x4", "--invariant", WITHIN, "--op", "free",
            "--depth", "2", "--search-walks", "0", "--search-states", "0", "--json"]  # no search: only a witness
    alone = pcpu_verify(*args, cwd=tmp_path)
    witnessed = pcpu_verify(*args, cwd=ROOT)
    assert alone.returncode == 0 and witnessed.returncode == 0, alone.stderr + witnessed.stderr
    [before] = [r for r in json.loads(alone.stdout)["results"] if r["op"] == "free"]
    [after] = [r for r in json.loads(witnessed.stdout)["results"] if r["op"] == "free"]
    assert before["result"] == "NOT-INDUCTIVE" and before["depth"] == 2
    assert after["result"] == "VIOLATED" and "witness tests/traces/" in after["detail"]
    assert len(after["trace"]["ops"]) == 8 and after["trace"]["geometry"]["block_bits"] == 4


def test_witnesses_and_no_witnesses_exclude_each_other() -> None:
    result = pcpu_verify("prove", "--geometry", "1x4", "--no-witnesses", "--witnesses", GALLERY)
    assert result.returncode == 2 and "exclude each other" in result.stderr


def test_a_malformed_witness_is_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = pcpu_verify("prove", "--variant", "v1", "--geometry", "1x4", "--witnesses", bad, "--no-layout")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "bad.json" in result.stderr
