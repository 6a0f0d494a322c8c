"""Compositional proofs (issue 12, part 4): block contracts on one block, chunk obligations over block metadata.

Fast tests at 8 and 16 bits per block; the wider ones are slow-marked.
"""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from installed import pcpu_verify_exe
import z3
from conftest import register_for_test

from pcpuverify.check.baseline import load_baseline
from pcpuverify.check.obligation import GeometrySetting, Obligation
from pcpuverify.model.chunk import PcpuBitmapMd, PcpuChunk
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.variants import Fixed
from pcpuverify.proofs.blocks.abstraction import consistent, realise
from pcpuverify.proofs.blocks.compose import CHUNK_HINT_INVARIANTS, FREE_OP, run_composed_suite
from pcpuverify.proofs.blocks.contracts import CONTRACTS, REFRESHING, Contract, build_query
from pcpuverify.proofs.blocks.instances import WITNESS, refutations, weak_invariant
from pcpuverify.proofs.blocks.labels import parse_block_label
from pcpuverify.proofs.blocks.prove import prove_contract, run_block_suite
from pcpuverify.proofs.blocks.roles import FREE_ROLES, ROLES, area, run_on_model, transition
from pcpuverify.proofs.blocks.run_lemma import LemmaProof, prove_lemma, spec_at
from pcpuverify.proofs.blocks.state import (
    ConcreteBlock,
    block_invariant,
    block_violations,
    concrete_block,
    fresh_block,
    md_in_range,
    md_of,
)
from pcpuverify.proofs.results import Verdict
from pcpuverify.proofs.solver import Answer, SolverOptions, check
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic.bv import I, Int, highest_set, lowest_set, ones, run_starts, to_amount
from pcpuverify.symbolic.encode import SymFixed
from pcpuverify.symbolic.longest_run import RunCut, levels, longest_run
from pcpuverify.symbolic.state import BLOCK_FIELDS, SymBlock, SymChunk

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("v1-patch09", "v1", "fixed")
BITWUZLA = SolverOptions(solver="bitwuzla", timeout=300)


def _area_for(role_part: str, B: int, rng: random.Random) -> tuple[int, int]:
    if role_part == "same":
        lo = rng.randrange(B)
        return lo, rng.randint(lo + 1, B)
    return {"start": (rng.randrange(B), B), "end": (0, rng.randint(1, B)), "middle": (0, B), "": (0, 0)}[role_part]


SLOW_VARIANTS = [pytest.param(v, marks=pytest.mark.slow) if v != "fixed" else v for v in VARIANTS]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("block_bits", [8, 16, pytest.param(64, marks=pytest.mark.slow)])
def test_each_role_in_z3_equals_the_models_function(variant: str, block_bits: int) -> None:
    """Conformance of the block transitions: on random blocks (any metadata), Z3 and the model agree."""
    rng = random.Random(block_bits)
    for role in ROLES:
        pre = fresh_block(block_bits)
        a = area(role, block_bits)
        post = transition(variant, role, pre, a)
        for _ in range(12):
            bits = rng.getrandbits(block_bits)
            md = PcpuBitmapMd(*(rng.randint(0, block_bits) for _ in BLOCK_FIELDS))
            lo, hi = _area_for(role.part, block_bits, rng)
            solver = z3.Solver()
            solver.add(pre.alloc_map == bits, a.lo == lo, a.hi == hi,
                       *[getattr(md_of(pre), f) == getattr(md, f) for f in BLOCK_FIELDS])
            assert solver.check() == z3.sat
            got = concrete_block(solver.model(), post)
            want = run_on_model(variant, role, ConcreteBlock(block_bits, bits, md), lo, hi)
            assert (got.bits, got.md) == (want.bits, want.md), (role.name, bits, md, lo, hi)


@pytest.mark.slow
@pytest.mark.parametrize("variant", SLOW_VARIANTS)
def test_every_block_contract_is_proved_at_8_bits(variant: str) -> None:
    results = run_block_suite(variant, 8, BITWUZLA)
    assert len(results) == len(CONTRACTS)
    assert {r.verdict for r in results} == {Verdict.PROVED}, [r.to_json() for r in results if not r.verdict.passed]
    assert all(r.geometry == "block8" and r.extra["solver"] for r in results)


@pytest.mark.slow
def test_block_contracts_are_proved_at_16_bits() -> None:
    results = run_block_suite("fixed", 16, BITWUZLA)
    assert {r.verdict for r in results} == {Verdict.PROVED}


def test_the_abstraction_is_exact_at_8_bits() -> None:
    """Every metadata ``consistent`` allows is realised by bits that meet the block invariant (replay needs it);
    the converse is the proved contract md-abstraction-sound.  All of them, enumerated by the solver."""
    B = 8
    md = md_of(fresh_block(B, "md"))
    solver = z3.Solver()
    solver.add(consistent(md, B))
    allowed = 0
    while solver.check() == z3.sat:
        values = [solver.model().eval(getattr(md, f)).as_signed_long() for f in BLOCK_FIELDS]
        m = PcpuBitmapMd(*values)
        assert block_violations(ConcreteBlock(B, realise(m, B), m)) == [], m
        solver.add(z3.Or([getattr(md, f) != v for f, v in zip(BLOCK_FIELDS, values, strict=True)]))
        allowed += 1
    assert allowed > B * B  # not a trivially small set


# -- mutants: a broken refresh is VIOLATED with a replayed block; a broken encoding alone is SPURIOUS ---------


class LeftFreeLost(Fixed):
    """A refresh that forgets the left edge."""

    def pcpu_block_refresh_hint(self, chunk: PcpuChunk, index: int) -> None:
        super().pcpu_block_refresh_hint(chunk, index)
        chunk.md_blocks[index].left_free = 0


class SymLeftFreeLost(SymFixed):
    def pcpu_block_refresh_hint(self, chunk: SymChunk, index: Int) -> SymChunk:
        chunk = super().pcpu_block_refresh_hint(chunk, index)
        return self.put(chunk, index, replace(self.md(chunk, index), left_free=I(0)))


def _refresh_contract() -> object:
    return next(c for c in CONTRACTS if c.name == "block-hints-match-scan" and c.role.name == "pcpu_block_refresh_hint")


def test_a_refresh_that_loses_left_free_is_violated_on_a_concrete_block(monkeypatch: pytest.MonkeyPatch) -> None:
    register_for_test(monkeypatch, "test-left-free-lost", LeftFreeLost, SymLeftFreeLost)
    r = prove_contract("test-left-free-lost", _refresh_contract(), 8, BITWUZLA)  # type: ignore[arg-type]
    assert r.verdict is Verdict.VIOLATED, r.to_json()
    block = r.extra["counterexample"]["block"]
    before = ConcreteBlock(8, int(block["alloc_map"][::-1], 2), PcpuBitmapMd(**block["md"]))
    assert before.bits & 1 == 0  # bit 0 free: only then is left_free 0 wrong
    after = run_on_model("test-left-free-lost", _refresh_contract().role, before, 0, 0)  # type: ignore[attr-defined]
    assert any("left_free" in m for m in block_violations(after))


def test_an_encoding_that_disagrees_with_the_model_is_spurious_not_violated(monkeypatch: pytest.MonkeyPatch) -> None:
    register_for_test(monkeypatch, "test-encoding-only", Fixed, SymLeftFreeLost)
    r = prove_contract("test-encoding-only", _refresh_contract(), 8, BITWUZLA)  # type: ignore[arg-type]
    assert r.verdict is Verdict.SPURIOUS, r.to_json()


# -- the instantiated queries (instances.py): weaker than the full ones, and never the last word on a sat ------


def _contract(name: str, role: str) -> Contract:
    return next(c for c in CONTRACTS if c.name == name and c.role.name == role)


def _block_and_its_invariant(B: int) -> tuple[SymChunk, z3.BoolRef]:
    chunk = fresh_block(B)
    return chunk, z3.And(md_in_range(md_of(chunk), B), block_invariant(chunk))


def test_each_instance_follows_from_the_block_invariant() -> None:
    """The weaker precondition is implied by the full one, at any position: so its unsat proves the contract."""
    B = 8
    chunk, full = _block_and_its_invariant(B)
    at = z3.BitVec("t", 16)
    solver = z3.Solver()
    solver.add(full, z3.Not(weak_invariant(chunk, md_of(chunk), [at])))
    assert solver.check() == z3.unsat


def test_a_block_that_breaks_the_invariant_meets_one_refutation_at_some_witness() -> None:
    """The negated conjuncts cover the whole invariant: every block that breaks it satisfies one of them,
    for some value of the witness (enumerated: 0 to B), so no violation escapes the weaker queries."""
    B = 8
    chunk, _ = _block_and_its_invariant(B)
    md = md_of(chunk)
    refuted = refutations(chunk, md)
    witness = z3.BitVec(WITNESS, 16)
    solver = z3.Solver()
    solver.add(md_in_range(md, B), z3.Not(block_invariant(chunk)))
    for value in range(B + 1):
        solver.add(*[z3.Not(z3.substitute(negation, (witness, z3.BitVecVal(value, 16))))
                     for _, negation, _ in refuted])
    assert solver.check() == z3.unsat
    assert len(refuted) == 6  # a run of h, none of h + 1, and block_scan_parts' four


def test_the_contracts_asked_the_weaker_way_are_proved_so_at_8_bits_the_refreshing_ones_with_the_circuit_cut(
) -> None:
    instantiated = [c for c in CONTRACTS if c.weak_pre is not None]
    assert {(c.name, c.role.name) for c in instantiated if c.name != "block-hints-match-scan"} == {
        ("refresh-keeps-first-free-and-first-run", "pcpu_block_refresh_hint"),
        *(("alloc-never-raises-hints", f"pcpu_block_update_hint_alloc:{part}") for part in REFRESHING),
        ("free-same-block-runs", "pcpu_block_update_hint_free:same")}
    assert len(instantiated) == 9 + 5
    for contract in instantiated:
        r = prove_contract("fixed", contract, 8, BITWUZLA)
        role = contract.role
        refreshes = role.kind == "refresh" or (role.kind == "alloc" and role.part in REFRESHING)
        assert r.verdict is Verdict.PROVED, r.to_json()
        assert r.extra["queries"] == ("instantiated, circuit cut" if refreshes else "instantiated"), r.to_json()
        assert ("run_lemma" in r.extra) == refreshes, r.to_json()
        assert {part["status"] for part in r.extra["solvers"].values()} == {"unsat"}, r.to_json()
        steps = [name for name in r.extra["solvers"] if name.startswith("step: ")]
        runs = ["step: it is the freed run"] if contract.name == "free-same-block-runs" else []
        assert steps == (FREED_RUN_STEPS + runs if role == FREE_ROLES[0] else []), r.to_json()
        if contract.name == "block-hints-match-scan":
            assert "no run of contig_hint + 1 bits" in r.extra["solvers"], r.to_json()


FREED_RUN_STEPS = [f"step: {name}" for name in ("lower edge", "upper edge", "free", "hint covers it",
                                                "a longer run lies inside it")]


def test_a_sat_the_model_does_not_confirm_is_asked_again_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no positions to state the claim at, a free inside one block is sat on blocks the invariant rules
    out (a hint of 0 beside free bits); that sat is not reported, the full query proves the row."""
    monkeypatch.setattr("pcpuverify.proofs.blocks.contracts.instance_terms", lambda *args: [])
    contract = _contract("block-hints-match-scan", "pcpu_block_update_hint_free:same")
    weak = contract.weak_queries(build_query("fixed", contract.role, 8))
    assert weak is not None and any(check(q, BITWUZLA).status == "sat" for _, q in weak)
    r = prove_contract("fixed", contract, 8, BITWUZLA)
    assert r.verdict is Verdict.PROVED and r.extra["queries"] == "instantiated, then full", r.to_json()


def test_a_refresh_that_loses_left_free_breaks_an_allocation_through_the_instantiated_query(
        monkeypatch: pytest.MonkeyPatch) -> None:
    register_for_test(monkeypatch, "test-left-free-lost", LeftFreeLost, SymLeftFreeLost)
    contract = _contract("block-hints-match-scan", "pcpu_block_update_hint_alloc:same")
    r = prove_contract("test-left-free-lost", contract, 8, BITWUZLA)
    assert r.verdict is Verdict.VIOLATED and r.extra["queries"] == "instantiated, circuit cut", r.to_json()
    block = r.extra["counterexample"]["block"]
    before = ConcreteBlock(8, int(block["alloc_map"][::-1], 2), PcpuBitmapMd(**block["md"]))
    assert block_violations(before) == []  # the model's block meets the full invariant
    lo, hi = r.extra["counterexample"]["area"]
    after = run_on_model("test-left-free-lost", contract.role, before, lo, hi)
    assert any("left_free" in m for m in block_violations(after))


# -- the longest-run lemma (run_lemma.py): the circuit proved step by step, then cut -------------------------


@pytest.mark.parametrize("n", [5, 8, 13])
def test_the_longest_run_lemma_is_proved_step_by_step(n: int) -> None:
    proof = prove_lemma(n, SolverOptions(solver="z3"))
    assert proof.proved and len(proof.answers) == 2 * (levels(n) + 1) + 2, proof.to_json()


@pytest.mark.parametrize("n", [8, 13])
def test_the_lemma_holds_of_the_circuit_itself(n: int) -> None:
    """What a cut query assumes is true of the circuit's own answer, at any position (asked whole, Z3)."""
    free, t = z3.BitVec("free", n), z3.BitVec("t", 16)
    solver = z3.Solver()
    solver.add(z3.Not(spec_at(RunCut(free, n, *longest_run(free, n)), [t])))
    assert solver.check() == z3.unsat


def _step_adds_one_at_the_last_step(ends: z3.BitVecRef, length: Int, starts: z3.BitVecRef, j: int
                                    ) -> tuple[z3.BitVecRef, Int]:
    grown = (ends & z3.ZeroExt(1, starts)) << (1 << j)
    return z3.If(grown != 0, grown, ends), length + z3.If(grown != 0, I(1 << j), I(1 if j == 0 else 0))


@pytest.mark.parametrize(("step", "broken", "query"), [
    ("doubled", lambda starts, k: starts & z3.LShR(starts, (1 << (k - 1)) + (k == 2)), "doubling 2"),
    ("search_start", lambda n: (z3.BitVecVal((1 << (n + 1)) - 2, n + 1), I(0)), "search start"),
    ("search_step", _step_adds_one_at_the_last_step, "search step 0"),
    ("search_result", lambda ends, length, n: (length, highest_set(ends, n + 1) - length), "result"),
])
def test_a_broken_circuit_step_is_caught_by_its_own_query(monkeypatch: pytest.MonkeyPatch, step: str,
                                                          broken: object, query: str) -> None:
    monkeypatch.setattr(f"pcpuverify.symbolic.longest_run.{step}", broken)
    monkeypatch.setattr("pcpuverify.proofs.blocks.run_lemma._PROOFS", {})
    proof = prove_lemma(8, SolverOptions(solver="z3"))
    assert not proof.proved and proof.to_json()["not unsat"] == [query], proof.to_json()


def test_without_the_lemma_the_circuit_stays_in_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lemma that is not proved (here: an unknown) cuts nothing: the row is asked with the circuit, and says so."""
    unproved = LemmaProof(8, (Answer("unknown", 0.0, reason="test"),), ("doubling 0",))
    monkeypatch.setattr("pcpuverify.proofs.blocks.prove.prove_lemma", lambda n, options: unproved)
    r = prove_contract("fixed", _contract("block-hints-match-scan", "pcpu_block_refresh_hint"), 8, BITWUZLA)
    assert r.verdict is Verdict.PROVED and r.extra["queries"] == "instantiated", r.to_json()
    assert r.extra["run_lemma"]["status"] == "not proved", r.to_json()


# -- the freed run's steps (freed_run.py): proved before the free's weaker queries, never assumed unproved ------


class HintShortOnFree(Fixed):
    """A free that raises a block's contig hint one bit short of the run it freed."""

    def pcpu_block_update_hint_free(self, chunk: PcpuChunk, bit_off: int, bit_size: int) -> bool:
        block = chunk.md_blocks[self.pcpu_off_to_block_index(bit_off)]
        before = block.contig_hint
        update_chunk = super().pcpu_block_update_hint_free(chunk, bit_off, bit_size)
        if block.contig_hint > before:
            block.contig_hint -= 1
        return update_chunk


class SymHintShortOnFree(SymFixed):
    def pcpu_block_update_hint_free(self, chunk: SymChunk, bit_off: Int, bit_size: Int) -> tuple[SymChunk, z3.BoolRef]:
        index = self.pcpu_off_to_block_index(bit_off)
        before = self.md(chunk, index).contig_hint
        chunk, update_chunk = super().pcpu_block_update_hint_free(chunk, bit_off, bit_size)
        after = self.md(chunk, index)
        short = z3.If(after.contig_hint > before, after.contig_hint - 1, after.contig_hint)
        return self.put(chunk, index, replace(after, contig_hint=short)), update_chunk


def test_a_free_that_raises_the_hint_short_fails_its_step_and_is_violated(monkeypatch: pytest.MonkeyPatch) -> None:
    register_for_test(monkeypatch, "test-hint-short-on-free", HintShortOnFree, SymHintShortOnFree)
    contract = _contract("block-hints-match-scan", "pcpu_block_update_hint_free:same")
    weak = contract.weak_queries(build_query("test-hint-short-on-free", contract.role, 8))
    assert weak is not None
    statuses = {name: check(query, BITWUZLA).status for name, query in weak if name.startswith("step: ")}
    assert statuses == {**{step: "unsat" for step in FREED_RUN_STEPS}, "step: hint covers it": "sat"}
    r = prove_contract("test-hint-short-on-free", contract, 8, BITWUZLA)
    assert r.verdict is Verdict.VIOLATED and r.extra["queries"] == "instantiated", r.to_json()
    block = r.extra["counterexample"]["block"]
    before = ConcreteBlock(8, int(block["alloc_map"][::-1], 2), PcpuBitmapMd(**block["md"]))
    lo, hi = r.extra["counterexample"]["area"]
    after = run_on_model("test-hint-short-on-free", contract.role, before, lo, hi)
    assert block_violations(before) == [] and block_violations(after) != []


def test_a_step_that_does_not_follow_is_not_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A false step is sat on blocks the model keeps right: nothing is reported, the full query proves the row."""
    def with_a_false_step(after: SymBlock, *args: object) -> list[tuple[str, z3.BoolRef]]:
        return [("the hint is 0", after.contig_hint == 0)]
    monkeypatch.setattr("pcpuverify.proofs.blocks.contracts.free_region_steps", with_a_false_step)
    r = prove_contract("fixed", _contract("block-hints-match-scan", "pcpu_block_update_hint_free:same"), 8, BITWUZLA)
    assert r.verdict is Verdict.PROVED and r.extra["queries"] == "instantiated, then full", r.to_json()


# -- the composition --------------------------------------------------------------------------------------


def test_fixed_keeps_the_chunk_hint_invariants_over_two_blocks_of_metadata() -> None:
    results = run_composed_suite("fixed", 8, 2, BITWUZLA)
    assert len(results) == 2 * len(CHUNK_HINT_INVARIANTS)
    assert {r.verdict for r in results} == {Verdict.PROVED}, [r.to_json() for r in results]
    assert {r.geometry for r in results} == {"2xblock8"}


def test_v1s_known_finding_is_a_violated_chunk_obligation_replayed_on_the_model() -> None:
    """Finding 2 of docs/gallery.md: after a same-block free v1 raises the hint to the block's and misses a run
    that goes on into the next block."""
    results = {(r.invariant, r.op): r for r in run_composed_suite("v1", 8, 2, BITWUZLA,
                                                                   ops=frozenset({FREE_OP}))}
    found = results[("chunk-contig-hint-exact-below-a-block", FREE_OP)]
    assert found.verdict is Verdict.VIOLATED, found.to_json()
    assert "is below a block" in found.detail  # the invariant's own concrete check said so, on the model


def test_labels() -> None:
    assert parse_block_label("block1024").block_bits == 1024 and parse_block_label("block1024").nr_blocks is None
    assert parse_block_label("4xblock1024").nr_blocks == 4
    assert parse_block_label("8xblock1024").nr_blocks == 8  # 8192 bits: the most 16-bit offsets compose
    # 16xblock1024 once wrapped: 32xblock1024's chunk of 32,768 bits made every assumption unsatisfiable
    for bad in ("block7", "block2048", "0xblock8", "blocks8", "65xblock8", "16xblock1024", "64xblock256"):
        with pytest.raises(GeometryError):
            parse_block_label(bad)


# -- the cross-check: where the compositional rows and the concrete suite both run, they agree ------------


def _same_class(a: str, b: str) -> bool:
    return (a == "PROVED") == (b == "PROVED")


@pytest.mark.parametrize("variant", SLOW_VARIANTS)
def test_block8_and_1xblock8_agree_with_the_1x8_baseline(variant: str) -> None:
    """The block invariant's contracts and the one-block composition, against the committed 1x8 suite rows."""
    baseline = load_baseline(ROOT / "baseline.json", required=True)
    one_by_8 = GeometrySetting(Geometry.parse("1x8"))
    blocks = run_block_suite(variant, 8, BITWUZLA, wanted=frozenset({"block-hints-match-scan"}))
    for op in ("alloc", "free"):
        expected = baseline.expected(Obligation(variant, one_by_8, "block-hints-match-scan", op))
        assert expected is not None
        assert all(_same_class(r.verdict.value, expected) for r in blocks), (op, expected)
    for r in run_composed_suite(variant, 8, 1, BITWUZLA, ops=frozenset({FREE_OP})):
        expected = baseline.expected(Obligation(variant, one_by_8, r.invariant, "free"))
        assert expected is not None and _same_class(r.verdict.value, expected), (r.invariant, r.verdict, expected)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["v1", "fixed"])
@pytest.mark.parametrize("nr_blocks", [2, 3])
def test_composed_free_rows_agree_with_the_concrete_suite(variant: str, nr_blocks: int) -> None:
    """Nx8 suite vs Nxblock8 composition, for the chunk-hint invariants after a free."""
    suite = run_suite(variant, Geometry(8, nr_blocks, tuple(range(nr_blocks))),
                      SuiteOptions(solver=BITWUZLA), set(CHUNK_HINT_INVARIANTS), {"free"})
    concrete = {r.invariant: r.verdict.value for r in suite if r.op == "free"}
    for r in run_composed_suite(variant, 8, nr_blocks, BITWUZLA, ops=frozenset({FREE_OP})):
        assert _same_class(r.verdict.value, concrete[r.invariant]), (r.invariant, r.verdict, concrete[r.invariant])


@pytest.mark.parametrize("solver", ["z3", "bitwuzla", "cvc5", "portfolio"])
def test_every_solver_gives_the_composed_free_rows_one_verdict(solver: str) -> None:
    """v1 at 2xblock8, the row that took the label out of the gate: the portfolio's solver once freed a bit
    beside a block's contig hint and kept the two runs apart (SPURIOUS).  With the freed run whole
    (``freed_run_maximal``) every solver gives the free rows the same verdicts, the finding VIOLATED."""
    rows = run_composed_suite("v1", 8, 2, SolverOptions(solver=solver, timeout=300), ops=frozenset({FREE_OP}))
    assert {r.invariant: r.verdict for r in rows} == {
        **{name: Verdict.PROVED for name in CHUNK_HINT_INVARIANTS},
        "chunk-contig-hint-exact-below-a-block": Verdict.VIOLATED,
    }


@pytest.mark.slow
def test_block_contracts_are_proved_at_64_bits() -> None:
    results = run_block_suite("fixed", 64, BITWUZLA)
    assert {r.verdict for r in results} == {Verdict.PROVED}, [r.to_json() for r in results if r.verdict is not
                                                               Verdict.PROVED]


# -- the command line -------------------------------------------------------------------------------------


def _pcpu_verify(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = pcpu_verify_exe()
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd)


def test_prove_geometry_block8_prints_its_rows_as_json() -> None:
    done = _pcpu_verify("prove", "--variant", "fixed", "--geometry", "block8", "--geometry", "2xblock8",
                        "--invariant", "fit-left-is-free", "--invariant", "chunk-contig-hint-not-above-free-run",
                        "--no-layout", "--solver", "bitwuzla", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)["results"]
    assert [(r["geometry"], r["invariant"], r["op"]) for r in rows] == [
        ("block8", "fit-left-is-free", "pcpu_find_block_fit"),
        ("2xblock8", "chunk-contig-hint-not-above-free-run", "pcpu_chunk_update_hint"),
        ("2xblock8", "chunk-contig-hint-not-above-free-run", "pcpu_free_area:same-block"),
    ]
    assert {r["result"] for r in rows} == {"PROVED"}
    assert all(r["solver"] for r in rows)


def test_linux_4_14_has_no_block_rows_and_prove_says_so() -> None:
    """The block contracts state 2017's pcpu_bitmap_md or 5.2's pcpu_block_md; 4.14's blocks (2017's fields,
    another update) have none: named, one line and exit 2; among the project's variants (run in the repository,
    so its config's six), 4.14 is skipped with a note, and the 2017 ones proved (the release encodings once
    crashed here on the 2017 block's fields; the scan_hint releases have no row of this 2017 contract)."""
    named = _pcpu_verify("prove", "--variant", "fixed", "--variant", "linux-4.14", "--geometry", "block8",
                         "--no-layout")
    assert named.returncode == 2 and named.stdout == ""
    assert named.stderr.startswith("pcpu-verify: error: --geometry block8: no rows for linux-4.14: ")
    assert len(named.stderr.splitlines()) == 1
    project = _pcpu_verify("prove", "--geometry", "block8", "--invariant", "fit-left-is-free", "--no-layout",
                           "--solver", "bitwuzla", "--json", cwd=Path(__file__).resolve().parent.parent)
    assert project.returncode == 0, project.stderr[-2000:]
    rows = json.loads(project.stdout)["results"]
    assert sorted(r["variant"] for r in rows) == ["fixed", "v1", "v1-patch09"]
    assert {r["result"] for r in rows} == {"PROVED"}
    assert "no block8 rows for linux-4.14: 4.14's blocks have no block contracts" in project.stderr


def test_prove_refuses_a_bad_block_label_in_one_line() -> None:
    done = _pcpu_verify("prove", "--geometry", "block12", "--no-layout")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "block12" in done.stderr
    assert done.stdout == ""


# -- the cheaper run encodings equal the ones they replaced --------------------------------------------------


def _run_starts_by_barrel_shifts(free: z3.BitVecRef, n: int, length: Int) -> z3.BitVecRef:
    """bv.run_starts as it was: each digit's run shifted by the symbolic length of the lower ones."""
    powers = [free]
    while (1 << len(powers)) <= n:
        f, k = powers[-1], 1 << (len(powers) - 1)
        powers.append(f & z3.LShR(f, k))
    result, offset = ones(n), I(0)
    for j, f in enumerate(powers):
        digit = z3.Extract(j, j, length) == 1
        result = z3.If(digit, result & z3.LShR(f, to_amount(offset, n)), result)
        offset = offset + z3.If(digit, I(1 << j), I(0))
    return z3.If(length <= 0, ones(n), z3.If(length > n, z3.BitVecVal(0, n), result))


def _longest_run_by_barrel_shifts(free: z3.BitVecRef, n: int) -> tuple[Int, z3.BitVecRef]:
    """encode._longest_run as it was: (length, every start of such a run)."""
    powers = [free]
    while (1 << len(powers)) <= n:
        f, k = powers[-1], 1 << (len(powers) - 1)
        powers.append(f & z3.LShR(f, k))
    length, starts = I(0), ones(n)
    for j in reversed(range(len(powers))):
        cand = starts & z3.LShR(powers[j], to_amount(length, n))
        take = cand != 0
        starts = z3.If(take, cand, starts)
        length = length + z3.If(take, I(1 << j), I(0))
    return length, starts


@pytest.mark.parametrize("n", [8, 13, 16, pytest.param(64, marks=pytest.mark.slow)])
def test_run_starts_equals_its_barrel_shifter_form(n: int) -> None:
    free, length = z3.BitVec("free", n), z3.BitVec("length", 16)
    solver = z3.Solver()
    solver.add(run_starts(free, n, length) != _run_starts_by_barrel_shifts(free, n, length))
    assert solver.check() == z3.unsat


@pytest.mark.parametrize("n", [8, 16, pytest.param(64, marks=pytest.mark.slow)])
def test_longest_run_equals_its_barrel_shifter_form(n: int) -> None:
    free = z3.BitVec("free", n)
    length, first = SymFixed(Geometry(n, 1, (0,)))._longest_run(free, n)
    old_length, starts = _longest_run_by_barrel_shifts(free, n)
    solver = z3.Solver()
    solver.add(z3.Or(length != old_length, z3.And(length > 0, first != lowest_set(starts, n))))
    assert solver.check() == z3.unsat


@pytest.mark.slow
def test_check_takes_the_labels_baselines_and_caches_their_rows(tmp_path: Path) -> None:
    """``geometries = ["block8", "1xblock8"]`` in the config: the rows are baselined, then served from the cache;
    ``mainline-fixed`` has the scan_hint blocks' ``block8`` rows and no ``1xblock8`` item (the filters name none
    of its ``chunk_md`` rows); a C source has no item at a label (its search once crashed on one)."""
    from test_check import check, write_config

    write_config(tmp_path, variants=["fixed", "mainline-fixed"], geometries=["block8", "1xblock8"],
                 jobs=1, traces=[], sources=[str(ROOT / "tests" / "kernels" / "debian-6.12")])
    picked = ("--invariant", "fit-left-is-free", "--invariant", "chunk-contig-hint-region-free",
              "--invariant", "block-nr-bits")
    first, _ = check(tmp_path, "--update-baseline", *picked)
    assert first.returncode == 0, first.stderr[-2000:]
    baseline = json.loads((tmp_path / "baseline.json").read_text())
    assert baseline["suites"]["fixed"]["block8"]["fit-left-is-free"]["pcpu_find_block_fit"] == "PROVED"
    assert set(baseline["suites"]["fixed"]["1xblock8"]["chunk-contig-hint-region-free"]) == {
        "pcpu_chunk_update_hint", FREE_OP}
    assert set(baseline["suites"]["mainline-fixed"]["block8"]["block-nr-bits"].values()) == {"PROVED"}
    assert len(baseline["suites"]["mainline-fixed"]["block8"]["block-nr-bits"]) == 9
    second, summary = check(tmp_path, *picked)
    assert second.returncode == 0, second.stderr[-2000:]
    assert summary["items"] == {"fixed block8": "cached", "fixed 1xblock8": "cached",
                                "mainline-fixed block8": "cached"}
    assert summary["outcomes"]["ok"] == summary["rows"] == 3 + 9


def test_check_refuses_a_bad_label_in_one_line(tmp_path: Path) -> None:
    from test_check import check, write_config

    write_config(tmp_path, variants=["fixed"], geometries=["block9"], traces=[])
    done, _ = check(tmp_path)
    assert done.returncode == 2 and "block9" in done.stderr and len(done.stderr.splitlines()) == 1
