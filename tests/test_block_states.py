"""The closed set of block states (proofs/block_states.py): grown by the solver, held to what the model reaches.

At 1x4 the breadth-first search sees every state ``mainline`` reaches (1,548, 83 distinct block states), so
the closure, grown from a new chunk by the solver alone, can be compared with the real thing: it must hold
every block state and every ``chunk_md`` hint state the model reaches (or a row proved under it could be false),
and at 1x4 it holds no more block states.  A one-block chunk lists ``chunk_md``'s hints joined with its block's
state: 100 such states are reached at 1x4.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import z3
from installed import pcpu_verify_exe

from pcpuverify.counterexamples import breadth_first
from pcpuverify.counterexamples.explore import new_chunks
from pcpuverify.counterexamples.row_search import walk_states
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.reference import Reference
from pcpuverify.proofs import hint_reach, suite
from pcpuverify.proofs.block_states import (CHUNK_MD_HINTS, BlockState, Closure, HintState, block_fields,
                                           block_states_of, chunk_md_states_of, close)
from pcpuverify.proofs.conformance import model_fields
from pcpuverify.proofs.obligations import OPS, transition
from pcpuverify.proofs.results import Verdict
from pcpuverify.proofs.suite import SuiteOptions, run_suite
from pcpuverify.symbolic.state import SymChunk
from pcpuverify.symbolic.subjects import subject

ONE_SMALL_BLOCK = Geometry.parse("1x4")
PROJECT = Path(__file__).resolve().parent.parent


def closure_from_a_new_chunk(variant: str, geometry: Geometry, max_states: int) -> tuple[Closure, SymChunk]:
    """The closure relative to well-formedness alone: any strengthening true of every reachable state would do."""
    enc = subject(variant).require_encoding()(geometry)
    pre = enc.fresh_chunk("pre")
    steps = {}
    for kind in OPS:
        t = transition(enc, kind, pre, "op")
        steps[kind] = ([enc.well_formed(pre), t.precondition, t.step.unrolled, z3.Not(t.step.post.oob_write)],
                       t.step.post)
    return close(pre, steps, *states_reached(variant, geometry, [], pre), max_states, 60.0), pre


def states_reached(variant: str, geometry: Geometry, wanted: list[tuple[str, str]],
                   pre: SymChunk) -> tuple[set[BlockState], set[HintState]]:
    """The block states and ``chunk_md`` hints of the new chunks, and (for ``wanted``) of every state a
    breadth-first search reaches."""
    blocks, hints, seen = recorder(geometry, pre)
    for ref in new_chunks(variant, geometry):
        seen(ref)
    if wanted:
        breadth_first.search(variant, geometry, wanted, 10**6, seen)
    return blocks, hints


def recorder(geometry: Geometry, pre: SymChunk) -> tuple[set[BlockState], set[HintState], Callable[[Reference], None]]:
    """Two sets, and what adds the block states and ``chunk_md`` hints of a state shown to it to them."""
    names = block_fields(pre)
    blocks: set[BlockState] = set()
    hints: set[HintState] = set()

    def seen(ref: Reference) -> None:
        values = model_fields(ref)
        blocks.update(block_states_of(values, geometry, names))
        hints.update(chunk_md_states_of(values, geometry, names))

    return blocks, hints, seen


def test_the_closure_from_a_new_chunk_is_every_state_mainline_reaches() -> None:
    closure, pre = closure_from_a_new_chunk("mainline", ONE_SMALL_BLOCK, 10_000)
    # free-bits-count is never broken, so the search goes on to a fixpoint over every state
    blocks, hints = states_reached("mainline", ONE_SMALL_BLOCK, [("free-bits-count", "alloc")], pre)
    assert not closure.failed and closure.added[-1] == 0
    assert len(blocks) == 83 and closure.states == blocks
    # chunk_md's hints with the block: every one reached, and more (e.g. a scan hint that is the contig hint),
    # which a strengthening true of the reachable states would rule out; this closure assumes well-formedness alone
    assert len(hints) == 100 and closure.hints > hints
    assert all(len(h) == len(next(iter(blocks))) + len(CHUNK_MD_HINTS) for h in closure.hints)
    assert len(closure.added) > 2  # grown by the solver, round by round, from the new chunk's one state of each


def test_the_seeding_walks_show_states_the_model_reaches_and_most_of_them() -> None:
    """``prove`` seeds the sets with the states of random walks (``walk_states``) as well as the breadth-first
    search's: each one must be reachable (an unreachable seed could only leave rows open, but then the sets
    would no longer be what the model reaches at 1x4), the same for one seed, and most of the 83."""
    pre = subject("mainline").require_encoding()(ONE_SMALL_BLOCK).fresh_chunk("pre")

    def walked(seed: int) -> tuple[int, set[BlockState], set[HintState]]:
        blocks, hints, seen = recorder(ONE_SMALL_BLOCK, pre)
        return walk_states("mainline", ONE_SMALL_BLOCK, 2000, seed, seen), blocks, hints

    steps, blocks, hints = walked(0)
    reached_blocks, reached_hints = states_reached("mainline", ONE_SMALL_BLOCK, [("free-bits-count", "alloc")], pre)
    assert steps > 2000 and blocks <= reached_blocks and hints <= reached_hints
    assert len(blocks) > 83 // 2 and len(hints) > 100 // 2, (len(blocks), len(hints))
    assert walked(0) == (steps, blocks, hints) and walked(1) != walked(0)


def test_the_search_over_bits_and_hints_reaches_every_state_the_model_reaches() -> None:
    """``hint_reach.reach`` (the seeds of the joined set) lets a free release any run of allocated bits, so it may
    reach more than the model; it must reach at least as much (a missing seed only costs the closure queries, but a
    search that missed reachable states would be a wrong search).  At 1x4 it reaches exactly the model's states
    (so, by the test above, none outside the closure)."""
    pre = subject("mainline").require_encoding()(ONE_SMALL_BLOCK).fresh_chunk("pre")
    blocks, hints = states_reached("mainline", ONE_SMALL_BLOCK, [("free-bits-count", "alloc")], pre)
    searched = {"blocks": set(), "hints": set()}

    def seen(key: hint_reach.HintKey) -> None:
        values = hint_reach.values(key)
        searched["blocks"] |= block_states_of(values, ONE_SMALL_BLOCK, block_fields(pre))
        searched["hints"] |= chunk_md_states_of(values, ONE_SMALL_BLOCK, block_fields(pre))

    assert hint_reach.reach("mainline", ONE_SMALL_BLOCK, 10_000, seen).complete
    assert searched == {"blocks": blocks, "hints": hints}
    assert hint_reach.reach("mainline", ONE_SMALL_BLOCK, 100, lambda key: None) == (100, False)  # cut at 100


def test_a_closure_past_its_budget_is_no_lemma() -> None:
    closure, _ = closure_from_a_new_chunk("mainline", ONE_SMALL_BLOCK, 20)
    assert re.fullmatch(r"more than 20 (block|chunk_md hint) states \((alloc|free|populate|depopulate)\)",
                        closure.failed), closure.failed


def prove_nr_empty_free(cwd: Path) -> dict[str, object]:
    """The row, proved with prove's default --block-states: the config's inside a project, else none."""
    proc = subprocess.run(
        [pcpu_verify_exe(), "prove", "--variant", "mainline", "--geometry", "1x4", "--invariant",
         "nr-empty-pop-pages-by-block", "--op", "free", "--no-layout", "--no-witnesses", "--search-states", "0",
         "--json"], capture_output=True, text=True, timeout=600, check=False, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    (row,) = [r for r in json.loads(proc.stdout)["results"] if r["op"] == "free"]
    return row


@pytest.mark.slow
def test_prove_settles_a_row_under_the_closed_set_and_not_without_it(tmp_path: Path) -> None:
    """``mainline``'s ``nr-empty-pop-pages-by-block``/free: NOT-INDUCTIVE in the gate at 1x8, and at 1x4 too
    without the set (its counterexample to induction has a block no trace leaves).  Inside the project `prove`
    grows the set as the check does (its config's ``block-states``); outside one it does not."""
    row = prove_nr_empty_free(PROJECT)
    assert row["result"] == "PROVED", row
    # with the strengthening, the joined hints are exactly the 100 the model reaches (test above: 251 without it)
    assert str(row["detail"]).startswith(
        "under a closed set of 83 block states and 100 of chunk_md's hints joined with the block (")
    assert row["block_states"]["seed_reach"]["complete"], row["block_states"]
    # Houdini drops it without the set, and keeps it with the set: what proves the row
    assert "nr-empty-pop-pages-by-block" in row["block_states"]["regained"], row["block_states"]
    assert row["block_states"]["seed_walks"]["steps"] > row["block_states"]["seed_walks"]["walks"]
    without = prove_nr_empty_free(tmp_path)
    assert without["result"] == "NOT-INDUCTIVE"
    # the row says what was tried: the solver's depth and the random walks (the default 2,000)
    assert without["detail"] == "none within depth 4, nor in 2,000 random walks on model/", without


@pytest.mark.slow
def test_a_row_open_under_the_sets_shows_a_counterexample_inside_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mainline``'s ``chunk-md-scan-hint-clear-of-contig-hint``/alloc at 2x4 stays NOT-INDUCTIVE under the
    closed sets (each block and ``chunk_md``'s hints are listed apart there): the counterexample to induction
    it reports is the one of the query that assumed the sets, so its state lies inside them.  The one asked
    before the sets were grown, which it reported until 7 December 2026, does not."""
    grown: list[Closure] = []

    def recorded(*args: Any, **kwargs: Any) -> Closure:
        grown.append(close(*args, **kwargs))
        return grown[-1]

    monkeypatch.setattr(suite, "close", recorded)
    g = Geometry.parse("2x4")
    rows = run_suite("mainline", g, SuiteOptions(block_states=20_000), {"chunk-md-scan-hint-clear-of-contig-hint"},
                     {"alloc"})
    (row,) = [r for r in rows if r.op == "alloc"]
    assert row.verdict is Verdict.NOT_INDUCTIVE and "not under a closed set of" in row.detail, row.detail
    last = grown[-1]

    def inside(state: dict[str, Any]) -> bool:
        chunk = state["chunks"]["dynamic"]
        bits = chunk["alloc_map"]
        names = list(chunk["md_blocks"][0])
        blocks = {(int(bits[g.block_bits * i:g.block_bits * (i + 1)][::-1], 2), *(md[f] for f in names))
                  for i, md in enumerate(chunk["md_blocks"])}
        hints = tuple(chunk["chunk_md"][f] for f in CHUNK_MD_HINTS)
        return blocks <= last.states and hints in last.hints

    assert row.cti is not None and inside(row.cti["before"]), row.cti
