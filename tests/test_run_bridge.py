"""The chunk's longest free run over its blocks' metadata: the bridge holds and can fail, and the queries over
the metadata prove only what the whole queries prove."""

from __future__ import annotations

import pytest
import z3

from pcpuverify.invariants.base import REGISTRY, Invariant
from pcpuverify.invariants.check import invariants_for
from pcpuverify.invariants.hints import CHUNK_RUN_INVARIANTS, map_runs
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs import run_bridge
from pcpuverify.proofs.obligations import transition
from pcpuverify.proofs.solver import SolverOptions, check
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic.state import fresh_chunk
from pcpuverify.symbolic.subjects import subject

BITWUZLA = SolverOptions(solver="bitwuzla")
BLOCKS_EXACT = REGISTRY[run_bridge.BLOCKS_EXACT]


@pytest.fixture(autouse=True)
def bridge_asked_again() -> None:
    run_bridge._proved.clear()  # proved once per process: each test asks its own


@pytest.mark.parametrize("geometry", ["1x8", "2x8", "3x8", "2x16", "2x32"])
def test_the_bridge_is_proved(geometry: str) -> None:
    bridge = run_bridge.bridge(Geometry.parse(geometry), BLOCKS_EXACT, BITWUZLA)
    assert bridge.proved and bridge.answer.status == "unsat"


def test_without_blocks_that_match_their_bits_the_bridge_is_refuted() -> None:
    anything = Invariant("anything", "", "", "state", lambda alloc, chunk: iter(()), True,
                         z3=lambda chunk: z3.BoolVal(True))
    bridge = run_bridge.bridge(Geometry.parse("2x8"), anything, BITWUZLA)
    assert not bridge.proved and bridge.answer.status == "sat"


@pytest.mark.parametrize("name", sorted(CHUNK_RUN_INVARIANTS))
def test_each_invariant_is_its_run_form_over_the_bitmap(name: str) -> None:
    """The predicate the suite asks whole is the same term as the form the bridge restates: the bridge speaks of
    the invariant itself."""
    chunk = fresh_chunk(Geometry.parse("2x8"), "c")
    assert REGISTRY[name].z3(chunk).eq(CHUNK_RUN_INVARIANTS[name](chunk, map_runs(chunk)))


@pytest.mark.parametrize(("name", "parts"), [("chunk-contig-hint-not-above-free-run", 1),
                                             ("chunk-contig-hint-within-a-block", 1),
                                             ("chunk-contig-hint-exact-below-a-block", 3)])
def test_a_target_is_asked_by_its_conjuncts(name: str, parts: int) -> None:
    """Below a block, exact-below-a-block is three claims (a run of the hint's length, none longer, the hint on
    free bits), each its own query; together they are the claim."""
    chunk = fresh_chunk(Geometry.parse("2x8"), "c")
    claim = CHUNK_RUN_INVARIANTS[name](chunk, run_bridge.metadata_runs(chunk))
    split = run_bridge.conjuncts(claim)
    assert len(split) == parts
    assert check([claim != z3.And(split)], BITWUZLA).status == "unsat"


def test_the_route_needs_the_blocks_invariant_held() -> None:
    target = REGISTRY["chunk-contig-hint-exact-below-a-block"]
    assert run_bridge.applies(target, [target, BLOCKS_EXACT])
    assert not run_bridge.applies(target, [target])
    assert not run_bridge.applies(BLOCKS_EXACT, [BLOCKS_EXACT])


def _round(variant: str, geometry: str, kind: str, name: str) -> tuple[dict[str, object], list[z3.BoolRef]]:
    """Houdini's first round for one target: every state invariant of the layout held.  Returns the route's
    answers and the whole query."""
    g = Geometry.parse(geometry)
    enc = subject(variant).require_encoding()(g)
    pre = enc.fresh_chunk("pre")
    t = transition(enc, kind, pre, "op")
    post = t.step.post
    held = [i for i in invariants_for(subject(variant).require_encoding().chunk_layout)
            if i.kind == "state" and i.z3 is not None]
    side = [enc.well_formed(pre), t.precondition, t.step.unrolled, z3.Not(post.oob_write)]

    def holds(i: Invariant) -> z3.BoolRef:
        return i.z3(pre)

    answers = run_bridge.prove([REGISTRY[name]], held, pre, post, side, holds, BITWUZLA)
    return answers, [*side, *[holds(i) for i in held], z3.Not(REGISTRY[name].z3(post))]


@pytest.mark.parametrize("kind", ["alloc", "free"])
@pytest.mark.parametrize("name", sorted(CHUNK_RUN_INVARIANTS))
def test_the_route_proves_fixed(kind: str, name: str) -> None:
    answers, _ = _round("fixed", "2x16", kind, name)
    answer = answers[name]
    assert answer.status == "unsat" and answer.solver == "bitwuzla (runs from the blocks)"
    assert "run bridge (once per geometry)" in answer.times
    assert {k.split(" (")[0] for k in answer.times} == {"bitwuzla", "run bridge"}
    assert any("part 1 of" in k for k in answer.times)


@pytest.mark.parametrize(("kind", "name"), [("alloc", "chunk-contig-hint-not-above-free-run"),
                                            ("free", "chunk-contig-hint-exact-below-a-block")])
def test_the_route_proves_nothing_the_whole_query_refutes(kind: str, name: str) -> None:
    """``v1``'s findings (gallery): the route gives no answer, and the whole query is sat."""
    answers, whole = _round("v1", "2x8", kind, name)
    assert name not in answers
    assert check(whole, BITWUZLA).status == "sat"


@pytest.mark.parametrize("variant", ["fixed", pytest.param("v1", marks=pytest.mark.slow)])
def test_the_suite_gives_the_same_verdicts_over_the_metadata(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def rows() -> dict[tuple[str, str], tuple[str, str]]:
        results = run_suite(variant, Geometry.parse("2x8"), SuiteOptions(solver=BITWUZLA),
                            invariants=set(CHUNK_RUN_INVARIANTS))
        return {(r.invariant, r.op): (r.verdict.name, str(r.extra.get("solver"))) for r in results}

    bridged = rows()
    monkeypatch.setattr(run_bridge, "applies", lambda inv, held: False)
    whole = rows()
    assert {k: v[0] for k, v in bridged.items()} == {k: v[0] for k, v in whole.items()}
    # Houdini's rows, of every operation: all three of fixed's; v1 drops two, whose rows are asked whole
    kept = set(CHUNK_RUN_INVARIANTS) if variant == "fixed" else {"chunk-contig-hint-within-a-block"}
    houdini = {k for k, v in bridged.items() if v[1] == "bitwuzla (runs from the blocks)"}
    assert houdini == {(name, kind) for name in kept for kind in ("alloc", "free", "populate", "depopulate")}
    assert {whole[k] for k in houdini} <= {("PROVED", "bitwuzla")}
