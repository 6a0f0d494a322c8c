"""The breadth-first search on the model (counterexamples/breadth_first.py), alone and as ``prove``'s last search.

At 1x4 it sees every reachable state of ``mainline`` (1,548) and of ``mainline-fixed`` (956) in seconds, so the
tests can hold it to what the gallery says of both; at 1x8 it finds gallery 15's 8-operation violation with no
witness, which bounded model checking and the random walks never reached there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_kernel_build import cli, kernel

from pcpuverify.counterexamples.breadth_first import search
from pcpuverify.invariants.check import first_violation
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, op_name
from pcpuverify.model.trace import trace_from_json

ONE_SMALL_BLOCK = Geometry.parse("1x4")
# mainline's block invariants that the gallery's 5.2 findings break (gallery 13 to 16), with both kinds each
BLOCK_CLAIMS = [(name, kind) for name in ("scan-hint-before-contig-hint", "block-left-right-free-exact",
                                          "scan-hint-clear-of-contig-hint", "scan-hint-maximal")
                for kind in ("alloc", "free")]


def test_mainline_breaks_them_first_at_the_last_operation_of_their_kind() -> None:
    searched = search("mainline", ONE_SMALL_BLOCK, BLOCK_CLAIMS, 10**6)
    assert searched.complete and searched.states == 1548 and searched.depth == 19
    lengths = {obligation: len(trace.ops) for obligation, trace in searched.found.items()}
    # gallery 13 (3 ops), 14 (4 ops) and 16 (a scan hint inside the contig hint after a free, 7 ops on 4 bits)
    assert lengths == {("block-left-right-free-exact", "alloc"): 3, ("scan-hint-before-contig-hint", "free"): 4,
                       ("scan-hint-clear-of-contig-hint", "free"): 7, ("scan-hint-maximal", "free"): 7}
    for (name, kind), trace in searched.found.items():
        assert first_violation(trace, name) == len(trace.ops) - 1 and op_name(trace.ops[-1]) == kind


def test_mainline_fixed_keeps_them_on_every_reachable_state() -> None:
    searched = search("mainline-fixed", ONE_SMALL_BLOCK, BLOCK_CLAIMS, 10**6)
    assert searched.complete and searched.states == 956 and searched.found == {}


def test_a_search_cut_short_counts_only_whole_depths() -> None:
    """The scan hint finding is 4 operations deep; 50 states are spent in the third depth (31 new states)."""
    searched = search("mainline", ONE_SMALL_BLOCK, [("scan-hint-before-contig-hint", "free")], 50)
    assert not searched.complete and searched.found == {}
    assert searched.states_by_depth == [2, 4, 15] and searched.depth == 2


def test_a_found_trace_is_a_shortest_one() -> None:
    """Every state within 3 operations keeps scan-hint-before-contig-hint; the search stops at the first depth
    that breaks it, from the first new chunk (no page populated) that does."""
    searched = search("mainline", Geometry.parse("1x8"), [("scan-hint-before-contig-hint", "free")], 10**6)
    trace = searched.found[("scan-hint-before-contig-hint", "free")]
    assert searched.depth == len(trace.ops) == 4 and not searched.complete
    assert trace.geometry.populated == () and all(isinstance(op, Alloc) for op in trace.ops[:3])


def test_a_state_first_reached_through_a_broken_invariant_is_searched_again_for_a_path_that_keeps_it() -> None:
    """v1 at 2x4: a populated page 0, an allocation, a pop-only one, then a populate over both pages breaks
    nr-empty-pop-pages-matches-bitmap.  The search that kept one path per state (until 5 December 2026) reached a
    fixpoint of 54,123 states without it: the state before the populate was first reached through one that broke
    the invariant, and never searched again for the path that keeps it."""
    obligation = ("nr-empty-pop-pages-matches-bitmap", "populate")
    searched = search("v1", Geometry.parse("2x4"), [obligation], 10**6)
    trace = searched.found[obligation]
    assert searched.depth == len(trace.ops) == 3 and trace.geometry.populated == (0,)
    assert first_violation(trace, obligation[0]) == 2 and op_name(trace.ops[-1]) == "populate"


@pytest.mark.slow
def test_prove_finds_gallery_15_from_scratch_and_the_c_agrees(tmp_path: Path) -> None:
    """mainline's block-contig-hint-exact/alloc at 1x8 needs 8 operations: with no witness and no random walk,
    prove's breadth-first search makes it VIOLATED, and the trace it writes reproduces on Debian 6.12's C."""
    proc = cli("prove", "--variant", "mainline", "--geometry", "1x8", "--invariant", "block-contig-hint-exact",
               "--op", "alloc", "--depth", "3", "--search-walks", "0", "--no-witnesses", "--no-layout", "--json",
               "--traces", str(tmp_path))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (row,) = [r for r in json.loads(proc.stdout)["results"] if r["op"] == "alloc"]
    assert row["result"] == "VIOLATED" and row["depth"] == 8, row
    assert row["detail"].startswith("none within depth 3; a breadth-first search on model/ broke it: "), row
    (trace_file,) = tmp_path.glob("mainline__1x8__block-contig-hint-exact__alloc.json")
    trace = trace_from_json(json.loads(trace_file.read_text()))
    assert first_violation(trace, "block-contig-hint-exact") == 7
    on_c = cli("replay", str(trace_file), "--source", str(kernel("debian-6.12").percpu_c))
    assert on_c.returncode == 0 and "reproduced at step 7 on the C" in on_c.stdout, (on_c.stdout, on_c.stderr)


def test_prove_says_where_every_reachable_state_keeps_an_open_row() -> None:
    """At 1x4 the search sees every state mainline reaches: a row it leaves open says the invariant holds there and
    is not proved (a NOT-INDUCTIVE row stays one: explicit states are not a solver's proof)."""
    proc = cli("prove", "--variant", "mainline", "--geometry", "1x4", "--invariant", "nr-empty-pop-pages-by-block",
               "--op", "free", "--depth", "2", "--search-walks", "0", "--no-witnesses", "--no-layout", "--json",
               "--block-states", "0")  # the project's config asks for them, and under them the row is PROVED
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (row,) = [r for r in json.loads(proc.stdout)["results"] if r["op"] == "free"]
    assert row["result"] == "NOT-INDUCTIVE", row
    assert row["detail"] == ("none within depth 2, nor in a breadth-first search on model/ (every state reached"
                             " while an open row's invariant holds, 1,548, within 19 operations: it holds there,"
                             " not proved)"), row
    search = row["breadth_first"]
    assert (search["states"], search["depth"], search["complete"]) == (1548, 19, True) and search["seconds"] > 0
