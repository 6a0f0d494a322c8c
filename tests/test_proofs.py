"""The proof suite: its verdicts on the seed's code, and that it notices a broken transition or encoding."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import register_for_test

from pcpuverify.model.chunk import PcpuChunk
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.proofs.results import Verdict
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic import encode
from pcpuverify.symbolic.bv import Int
from pcpuverify.symbolic.state import SymChunk

ONE_BLOCK = Geometry.parse("1x8")


class ForgetsRightFree(PcpuAllocator):
    """v1-patch09 whose free path forgets to update the start block's ``right_free``."""

    variant = "forgets-right-free"

    def pcpu_block_update_hint_free(self, chunk: PcpuChunk, bit_off: int, bit_size: int) -> bool:
        index = self.pcpu_off_to_block_index(bit_off)
        old = chunk.md_blocks[index].right_free
        update = super().pcpu_block_update_hint_free(chunk, bit_off, bit_size)
        chunk.md_blocks[index].right_free = old
        return update


class SymForgetsRightFree(encode.SymPercpu):
    """The same mistake in the encoding."""

    variant = "forgets-right-free"

    def pcpu_block_update_hint_free(self, chunk: SymChunk, bit_off: Int, bit_size: Int) -> tuple[SymChunk, object]:
        index = self.pcpu_off_to_block_index(bit_off)
        old = self.md(chunk, index).right_free
        chunk, update = super().pcpu_block_update_hint_free(chunk, bit_off, bit_size)
        return self.put(chunk, index, replace(self.md(chunk, index), right_free=old)), update


def _verdicts(results: list) -> dict[tuple[str, str], Verdict]:
    return {(r.invariant, r.op): r.verdict for r in results}


@pytest.fixture(scope="module")
def v1_one_block() -> dict[tuple[str, str], Verdict]:
    return _verdicts(run_suite("v1", ONE_BLOCK, SuiteOptions(depth=3)))


@pytest.mark.slow
def test_v1_one_block_verdicts(v1_one_block: dict[tuple[str, str], Verdict]) -> None:
    """On one block, v1's reachable violations are the ones the concrete walks find at length 1."""
    violated = {k for k, v in v1_one_block.items() if v is Verdict.VIOLATED}
    assert violated == {
        ("nr-empty-pop-pages-matches-bitmap", "alloc"),
        ("bitmap-access-in-bounds", "alloc"),
        ("alloc-returns-aligned-free-offset", "alloc"),
        ("pop-only-alloc-on-populated-pages", "alloc"),
        # begin_fill_bits = pcpu_reserved_offset / 4 rounds down: a static size of 5 bytes leaves byte 4 free
        ("static-overlap-hidden", "init-first-chunk"),
    }
    assert v1_one_block[("block-hints-match-scan", "alloc")] is Verdict.PROVED
    assert v1_one_block[("free-bits-count", "free")] is Verdict.PROVED
    assert not any(v in (Verdict.UNKNOWN, Verdict.SPURIOUS, Verdict.VACUOUS) for v in v1_one_block.values())


@pytest.mark.slow
def test_every_violation_carries_a_replayable_trace() -> None:
    results = run_suite("v1", ONE_BLOCK, SuiteOptions(depth=2), invariants={"bitmap-access-in-bounds"})
    violated = [r for r in results if r.verdict is Verdict.VIOLATED]
    assert violated and all(r.trace is not None and r.trace["violates"] == r.invariant for r in violated)


@pytest.mark.slow
def test_broken_transition_is_violated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A free path that forgets ``right_free`` (in model and encoding alike) breaks the block hints."""
    register_for_test(monkeypatch, "forgets-right-free", ForgetsRightFree, SymForgetsRightFree)
    results = run_suite("forgets-right-free", ONE_BLOCK, SuiteOptions(depth=3),
                        invariants={"block-hints-match-scan"}, ops={"free"})
    (row,) = [r for r in results if r.op == "free"]
    assert row.verdict is Verdict.VIOLATED
    assert row.trace is not None and row.trace["ops"][-1]["op"] == "free"


def test_encoding_that_disagrees_with_model_is_nonconformant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model forgets ``right_free`` but the encoding does not: nothing may be reported PROVED."""
    register_for_test(monkeypatch, "forgets-right-free", ForgetsRightFree, encode.SymPercpu)
    results = run_suite("forgets-right-free", ONE_BLOCK, SuiteOptions(depth=2))
    assert results and all(r.verdict is Verdict.NONCONFORMANT for r in results)
    assert "right_free" in results[0].detail


def test_exhausted_solver_is_unknown_not_proved() -> None:
    starved = SuiteOptions(solver=SolverOptions(rlimit=1), depth=1, conformance_steps=4)
    results = run_suite("v1-patch09", ONE_BLOCK, starved, invariants={"block-hints-match-scan"}, ops={"alloc"})
    consecution = [r for r in results if r.op == "alloc"]
    assert consecution and all(r.verdict is Verdict.UNKNOWN for r in consecution)
