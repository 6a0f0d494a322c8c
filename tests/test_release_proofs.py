"""The proof suites of the release encodings: mainline-fixed is proved, mainline's and linux-4.14's findings are
VIOLATED.

Slow: a 1x8 suite of a release variant takes minutes (README's matrix table has the times).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_kernel_build import cli, kernel
from test_kernel_fixes import patched

from pcpuverify.counterexamples.kernel_diff import compare
from pcpuverify.counterexamples.witness import Witness, carry
from pcpuverify.invariants.check import first_violation, replay
from pcpuverify.kernel.harness import build_for, run_traces
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, Free, op_name
from pcpuverify.model.trace import Trace, trace_from_json
from pcpuverify.proofs.results import Verdict
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.proofs.suite import SuiteOptions, _beyond_depth, run_suite

ONE_BLOCK = Geometry.parse("1x8")
# prove's default solver: an unsat from any solver is final, and tests/test_portfolio.py holds the verdicts of
# every setting equal; Z3 alone took twice as long on these suites
PORTFOLIO = SolverOptions(solver="portfolio")


@pytest.mark.slow
def test_mainline_fixed_is_proved_on_one_block() -> None:
    """Every row of mainline-fixed at 1x8 (initiation, consecution with Houdini, the step invariants) is PROVED."""
    results = run_suite("mainline-fixed", ONE_BLOCK, SuiteOptions(solver=PORTFOLIO, depth=2))
    assert len(results) == 146
    assert {r.verdict for r in results} == {Verdict.PROVED}, [
        (r.invariant, r.op, r.verdict.value) for r in results if r.verdict is not Verdict.PROVED]


@pytest.mark.slow
def test_mainline_scan_hint_finding_is_violated_and_replays() -> None:
    """mainline breaks scan-hint-before-contig-hint: within depth 4 the free row is VIOLATED (4 ops: alloc 1;
    alloc 1; alloc 1 align 4; free 1), and the suite's trace replays on the model.  (The alloc row's shortest
    trace, gallery 16, is 6 ops: past depth 4 it is NOT-INDUCTIVE without a witness.)"""
    results = run_suite("mainline", ONE_BLOCK, SuiteOptions(solver=PORTFOLIO, depth=4),
                        invariants={"scan-hint-before-contig-hint"}, ops={"free"})
    (row,) = [r for r in results if r.op == "free"]
    assert row.verdict is Verdict.VIOLATED and row.trace is not None
    trace = trace_from_json(row.trace)
    assert first_violation(trace, "scan-hint-before-contig-hint") == len(trace.ops) - 1


@pytest.mark.slow
def test_linux_4_14_findings_are_violated_and_replay_on_the_model_and_the_c(tmp_path: Path) -> None:
    """linux-4.14 at 1x8, through the CLI: the free path's ``pcpu_chunk_update(start, s_block->contig_hint)``
    breaks chunk-hint-never-above-available (3 ops), the alloc path's refresh only when the area starts in
    ``contig_bits`` breaks chunk-hint-accurate-in-one-block (4 ops).  Each written trace replays on the model and,
    with ``replay --source``, on v4.14.5's own C."""
    proc = cli("prove", "--variant", "linux-4.14", "--geometry", "1x8", "--no-witnesses", "--json",
               "--invariant", "chunk-hint-never-above-available", "--invariant", "chunk-hint-accurate-in-one-block",
               "--traces", str(tmp_path))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)  # a VIOLATED row is a result: prove exits 0
    rows = {(r["invariant"], r["op"]): r["result"] for r in json.loads(proc.stdout)["results"]}
    assert rows[("chunk-hint-never-above-available", "free")] == "VIOLATED"
    assert rows[("chunk-hint-accurate-in-one-block", "alloc")] == "VIOLATED"
    traces = sorted(tmp_path.glob("linux-4.14__1x8__*.json"))
    assert {t.name for t in traces} >= {"linux-4.14__1x8__chunk-hint-never-above-available__free.json",
                                        "linux-4.14__1x8__chunk-hint-accurate-in-one-block__alloc.json"}
    claims = {trace: trace_from_json(json.loads(trace.read_text())) for trace in traces}
    for trace, claimed in claims.items():
        assert first_violation(claimed, claimed.violates) == len(claimed.ops) - 1, trace.name
    source = kernel("linux-4.14.5")  # skips here, after the model's part, where the release is not restored
    for trace, claimed in claims.items():
        on_c = cli("replay", str(trace), "--source", str(source.percpu_c))
        assert on_c.returncode == 0 and f"claimed violation of {claimed.violates} reproduced" in on_c.stdout, (
            trace.name, on_c.stdout, on_c.stderr)


PROOF_TRACES = Path(__file__).with_name("proof_traces")
# linux-4.14's witnesses for the rows bounded model checking leaves NOT-INDUCTIVE at depth 4, each breaking its
# claim at its last operation, a free, on the model and on v4.14.5's C: gallery 17's 8 operations with every
# size doubled (off-by-at-most-a-page, 3x8), and gallery 9's mechanism on a chunk the last allocation fills
# (accurate-in-one-block: found by breadth-first search at 1x8, 9 ops; on two and three blocks the same ops
# after the other blocks are filled).  Carried by ``prove --witnesses tests/proof_traces``.
WITNESSES_4_14 = {
    "linux-4.14__3x8__chunk-hint-off-by-at-most-a-page.json": ("3x8", 8),
    "linux-4.14__1x8__chunk-hint-accurate-in-one-block.json": ("1x8", 9),
    "linux-4.14__2x8__chunk-hint-accurate-in-one-block.json": ("2x8", 12),
    "linux-4.14__3x8__chunk-hint-accurate-in-one-block.json": ("3x8", 13),
}


@pytest.mark.parametrize("name", WITNESSES_4_14)
def test_linux_4_14_witness_breaks_the_model_at_its_last_free(name: str) -> None:
    trace = trace_from_json(json.loads((PROOF_TRACES / name).read_text()))
    assert (trace.variant, trace.geometry.name, len(trace.ops)) == ("linux-4.14", *WITNESSES_4_14[name])
    assert first_violation(trace, trace.violates) == len(trace.ops) - 1
    assert op_name(trace.ops[-1]) == "free"


@pytest.mark.parametrize("name", WITNESSES_4_14)
def test_linux_4_14_witness_reproduces_on_the_c(name: str) -> None:
    proc = cli("replay", str(PROOF_TRACES / name), "--source", str(kernel("linux-4.14.5").percpu_c))
    last = WITNESSES_4_14[name][1] - 1
    assert proc.returncode == 0 and f"reproduced at step {last} on the C" in proc.stdout, (proc.stdout, proc.stderr)


# mainline's witnesses for rows bounded model checking and the random search left NOT-INDUCTIVE at 1x8 and 2x8:
# gallery 15 on 8-bit blocks (a scan hint kept inside a larger freed area, then promoted: the block's contig
# hint falls below its longest run), found by breadth-first search of the model at 1x8 (every operation, to
# depth 12: 958,323 states); on two blocks the same ops after ``alloc 8; alloc 8; free 0`` fill block 1.  Each
# breaks its claim first at its last operation, of the row's kind; each reproduces on Debian 6.12's C, and not
# once scan-hint-inside-new-contig.patch (gallery 15's fix) is applied.
BREADTH_FIRST = PROOF_TRACES / "breadth-first"
WITNESSES_MAINLINE = {trace.name: trace_from_json(json.loads(trace.read_text()))
                      for trace in sorted(BREADTH_FIRST.glob("mainline__*.json"))}
MAINLINE_WITNESS_ROWS = 16  # 8 rows (allocs at 8 and 11 ops, frees at 9 and 12), at 1x8 and at 2x8


def test_mainline_witnesses_are_the_rows_they_name() -> None:
    """One file per row (invariant and kind), named for it, on one or two 8-bit blocks."""
    assert len(WITNESSES_MAINLINE) == MAINLINE_WITNESS_ROWS
    for name, trace in WITNESSES_MAINLINE.items():
        assert name == f"mainline__{trace.geometry.name}__{trace.violates}__{op_name(trace.ops[-1])}.json"
        assert trace.geometry.name in ("1x8", "2x8")


@pytest.mark.parametrize("name", WITNESSES_MAINLINE)
def test_mainline_witness_breaks_the_model_first_at_its_last_op(name: str) -> None:
    trace = WITNESSES_MAINLINE[name]
    assert first_violation(trace, trace.violates) == len(trace.ops) - 1


@pytest.mark.parametrize("name", WITNESSES_MAINLINE)
def test_mainline_witness_reproduces_on_the_c_and_not_with_gallery_15s_fix(name: str, tmp_path: Path) -> None:
    last = len(WITNESSES_MAINLINE[name].ops) - 1
    proc = cli("replay", str(BREADTH_FIRST / name), "--source", str(kernel("debian-6.12").percpu_c))
    assert proc.returncode == 0 and f"reproduced at step {last} on the C" in proc.stdout, (proc.stdout, proc.stderr)
    fixed = patched("debian-6.12", ("scan-hint-inside-new-contig.patch",), tmp_path)
    proc = cli("replay", str(BREADTH_FIRST / name), "--source", str(fixed.percpu_c))
    assert proc.returncode == 1 and "not reproduced on the C" in proc.stdout, (proc.stdout, proc.stderr)


# mainline's witness for chunk-hint-off-by-at-most-a-page/free at 2x8, which the closed set of block states left
# NOT-INDUCTIVE: gallery 13 (block 0's right_free lost: its run [5, 8) is hidden from chunk_md's scan) and gallery
# 12 (the free in block 1 never reaches chunk_md) leave chunk_md.contig_hint 0 beside the 9 free bits [5, 14).
# Built by hand, 10 operations, after a random walk found an 18-operation trace of the same mechanism.
OFF_BY_A_PAGE_2X8 = PROOF_TRACES / "mainline__2x8__chunk-hint-off-by-at-most-a-page.json"


def test_mainline_off_by_a_page_witness_breaks_the_model_first_at_its_last_free() -> None:
    trace = trace_from_json(json.loads(OFF_BY_A_PAGE_2X8.read_text()))
    assert (trace.variant, trace.geometry.name, len(trace.ops)) == ("mainline", "2x8", 10)
    assert first_violation(trace, trace.violates) == 9 and op_name(trace.ops[-1]) == "free"


def test_mainline_off_by_a_page_witness_reproduces_on_the_c_and_not_with_gallery_12s_fix(tmp_path: Path) -> None:
    """(With gallery 13's fix instead the allocations land elsewhere and the trace's last free names none.)"""
    proc = cli("replay", str(OFF_BY_A_PAGE_2X8), "--source", str(kernel("debian-6.12").percpu_c))
    assert proc.returncode == 0 and "reproduced at step 9 on the C" in proc.stdout, (proc.stdout, proc.stderr)
    fixed = patched("debian-6.12", ("chunk-md-free-end.patch",), tmp_path)
    proc = cli("replay", str(OFF_BY_A_PAGE_2X8), "--source", str(fixed.percpu_c))
    assert proc.returncode == 1 and "not reproduced on the C" in proc.stdout, (proc.stdout, proc.stderr)


# mainline's witness for chunk-hint-off-by-at-most-a-page/alloc at 3x8, the same two findings met by an allocation,
# which needs a third block: steps 8 and 9 free [8, 15) inside block 1 (gallery 12: chunk_md never hears of it and
# keeps its stale scan hint [11, 12)), beside block 0's free [5, 8) that its right_free 0 hides (gallery 13); step
# 10 breaks chunk_md's contig hint [19, 24) in block 2, and pcpu_chunk_refresh_hint(chunk, false) promotes the scan
# hint and scans forward only from bit 12: chunk_md.contig_hint 1 beside the free run [5, 15), off by 9.  Found by
# Go-Explore on Debian 6.12's C at 3x8 (a 121-operation trace), shrunk by `pcpu-verify minimize` to 11 operations.
OFF_BY_A_PAGE_ALLOC_3X8 = PROOF_TRACES / "mainline__3x8__chunk-hint-off-by-at-most-a-page.json"


def test_mainline_off_by_a_page_alloc_witness_breaks_the_model_first_at_its_last_alloc() -> None:
    trace = trace_from_json(json.loads(OFF_BY_A_PAGE_ALLOC_3X8.read_text()))
    assert (trace.variant, trace.geometry.name, len(trace.ops)) == ("mainline", "3x8", 11)
    assert first_violation(trace, trace.violates) == 10 and op_name(trace.ops[-1]) == "alloc"


@pytest.mark.parametrize("release", ["debian-6.12", "linux-5.4.286"])  # the second skips where it is not restored
def test_mainline_off_by_a_page_alloc_witness_reproduces_on_the_c(release: str) -> None:
    proc = cli("replay", str(OFF_BY_A_PAGE_ALLOC_3X8), "--source", str(kernel(release).percpu_c))
    assert proc.returncode == 0 and "reproduced at step 10 on the C" in proc.stdout, (proc.stdout, proc.stderr)


@pytest.mark.parametrize("patch", ["chunk-md-free-end.patch", "block-refresh-right-free.patch",
                                   "chunk-refresh-full-scan.patch", "mainline-fixed.patch"])
def test_mainline_off_by_a_page_alloc_witness_goes_with_each_fix(patch: str, tmp_path: Path) -> None:
    """Each of gallery 12's, 13's and the full refresh's fixes removes it on its own."""
    fixed = patched("debian-6.12", (patch,), tmp_path)
    proc = cli("replay", str(OFF_BY_A_PAGE_ALLOC_3X8), "--source", str(fixed.percpu_c))
    assert proc.returncode == 1 and "not reproduced on the C" in proc.stdout, (proc.stdout, proc.stderr)


# mainline's witness for scan-hint-before-contig-hint/alloc at 2x8: gallery 16 in block 0, block 1 untouched (the
# random search's 6-operation trace for mainline).  The 1x8 witness breaks nothing on two pages (its allocations
# land elsewhere), and linux-5.4's random walks, seeded by its own name, miss it, so without this file linux-5.4's
# row at 2x8 stayed NOT-INDUCTIVE.
BEFORE_2X8 = PROOF_TRACES / "mainline__2x8__scan-hint-before-contig-hint.json"


@pytest.mark.parametrize("variant", ["mainline", "linux-5.4"])
def test_the_2x8_scan_hint_before_witness_carries_to_both_scan_hint_releases(variant: str) -> None:
    witness = Witness(BEFORE_2X8.name, trace_from_json(json.loads(BEFORE_2X8.read_text())))
    assert (witness.trace.variant, witness.trace.geometry.name, len(witness.trace.ops)) == ("mainline", "2x8", 6)
    carried = carry([witness], variant, Geometry.parse("2x8"), witness.trace.violates, "alloc")
    assert carried is not None and carried.first == 5 and len(carried.trace.ops) == 6
    assert carry([witness], "mainline-fixed", Geometry.parse("2x8"), witness.trace.violates, "alloc") is None


# mainline's witness for scan-hint-clear-of-contig-hint/alloc at 2x8: a reachable state where the invariant holds
# and an allocation breaks it, so no strengthening can prove the row; the invariant broke before (step 9, a free:
# gallery 15's scan hint inside the new contig hint) and held again from step 11.  Step 11 promotes that scan hint:
# block 0's contig hint is the piece [2, 3) of the run [2, 4); step 12 spans the block edge, which clears the
# block's scan hint; step 13 demotes the piece to the scan hint; step 14 skips [3, 4), pcpu_block_update_scan()
# scans back to 2, and the equal, better-aligned run [2, 4) becomes the contig hint around that scan hint.  Found
# by a breadth-first search from states with such a piece (docs/releases.md); the same on Debian 6.12's C, step by
# step.
CLEAR_OF_2X8 = PROOF_TRACES / "mainline__2x8__scan-hint-clear-of-contig-hint.json"


def test_mainline_clear_of_alloc_row_breaks_again_after_an_earlier_break(tmp_path: Path) -> None:
    trace = trace_from_json(json.loads(CLEAR_OF_2X8.read_text()))
    replayed = replay(trace)
    broken_after = [any(v.invariant == trace.violates for v in s.violations) for s in replayed.steps]
    assert [i for i, broken in enumerate(broken_after) if broken] == [9, 10, 14]
    assert replayed.breaks(trace.violates) == [9, 14]  # step 10 keeps it broken: not a break
    assert op_name(trace.ops[9]) == "free" and op_name(trace.ops[14]) == "alloc"
    proc = cli("replay", str(CLEAR_OF_2X8))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    last = proc.stdout.splitlines()[-1]
    assert last == f"result: claimed violation of {trace.violates} reproduced at step 9, again at step 14", last
    source = kernel("debian-6.12")
    proc = cli("replay", str(CLEAR_OF_2X8), "--source", str(source.percpu_c))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.splitlines()[-1] == f"result: claimed violation of {trace.violates} reproduced at step 9," \
        " again at step 14 on the C", proc.stdout
    assert "  step 14: alloc bits=2 align=1\n    scan-hint-clear-of-contig-hint: dynamic chunk: md_blocks[0]: scan" \
        " hint [2, 3) overlaps contig hint [2, 4)\n" in proc.stdout, proc.stdout
    steps = [(s.result.bit_off, "", s.state) for s in replayed.steps]
    (run,) = run_traces(build_for(source, trace.geometry, trace.init), trace.geometry, [list(trace.ops)])
    assert len(run.steps) == 15 and compare(list(trace.ops), steps, run) is None


# A right_free that is short but not 0, which the searches of 5 December had never met and the counterexample to
# induction of chunk-md-scan-hint-clear-of-contig-hint/alloc at 2x8 needs (docs/releases.md, "The three open rows
# at 2x8, searched again").  After step 8 block 0 is .1...... with gallery 15's scan hint [2, 3) inside its contig
# hint [2, 8); step 9 takes [4, 6) and the refresh leaves [3, 4), a piece of [2, 4), as the scan hint; step 10
# skips past it (pcpu_next_hint) to [6, 8) and the refresh promotes it: a contig hint missing its left bit.  Steps
# 11 and 12 free from its end, so the shortcut "s_off == contig_hint + contig_hint_start" starts each freed area at
# bit 3: right_free 5 beside the free run [2, 8).
SHORT_RIGHT_FREE_OPS = (Alloc(2), Alloc(1), Alloc(4), Free(0), Alloc(1), Alloc(1), Free(0), Free(2), Free(3),
                        Alloc(2, 4), Alloc(2), Free(4), Free(6))


def test_a_right_free_short_but_not_zero_is_reached_on_the_model_and_the_c(tmp_path: Path) -> None:
    trace = Trace("mainline", Geometry(8, 2, (0, 1)), ops=SHORT_RIGHT_FREE_OPS, violates="block-left-right-free-exact")
    replayed = replay(trace)
    block = replayed.steps[-1].state["chunks"]["dynamic"]["md_blocks"][0]
    assert replayed.steps[-1].state["chunks"]["dynamic"]["alloc_map"].startswith("01000000")
    assert (block["contig_hint"], block["contig_hint_start"], block["right_free"]) == (5, 3, 5)
    assert replayed.breaks(trace.violates) == [5, 12]
    path = tmp_path / "short-right-free.json"
    path.write_text(json.dumps(trace.to_json()))
    proc = cli("replay", str(path), "--source", str(kernel("debian-6.12").percpu_c))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "  step 12: free bit_off=6\n    block-left-right-free-exact: dynamic chunk: md_blocks[0].right_free 5," \
        " a scan gives 6\n" in proc.stdout, proc.stdout


def test_a_witness_settles_a_row_whose_invariant_broke_earlier_by_another_operation() -> None:
    """The row's claim is consecution over reachable states: the clear-of trace's last allocation breaks the
    invariant from a state where it holds, so it is carried to the alloc row whole.  Its free row's break, at
    step 9, carries the first 10 operations."""
    witness = Witness(CLEAR_OF_2X8.name, trace_from_json(json.loads(CLEAR_OF_2X8.read_text())))
    alloc = carry([witness], "mainline", Geometry.parse("2x8"), witness.trace.violates, "alloc")
    assert alloc is not None and alloc.trace.ops == witness.trace.ops and alloc.first == 9
    free = carry([witness], "mainline", Geometry.parse("2x8"), witness.trace.violates, "free")
    assert free is not None and free.trace.ops == witness.trace.ops[:10] and free.first == 9
    assert carry([witness], "mainline", Geometry.parse("2x8"), witness.trace.violates, "populate") is None
    assert carry([witness], "mainline", Geometry.parse("1x8"), witness.trace.violates, "alloc") is None  # pages
    on_three = carry([witness], "mainline", Geometry.parse("3x8"), witness.trace.violates, "alloc")  # page 2 added
    assert on_three is not None and on_three.trace.ops == witness.trace.ops and on_three.first == 9


def test_a_row_left_open_by_the_solver_is_violated_by_the_witness_and_says_where_it_first_broke() -> None:
    """What prove does with mainline's clear-of/alloc row at 2x8 once consecution failed and bounded model
    checking found nothing (the whole suite for the invariant: 3 min 13 s): the witness, carried whole, settles it
    without a search (search_walks 0 would leave the row NOT-INDUCTIVE)."""
    witness = Witness(CLEAR_OF_2X8.name, trace_from_json(json.loads(CLEAR_OF_2X8.read_text())))
    row = _beyond_depth("mainline", Geometry.parse("2x8"), witness.trace.violates, "alloc", 4, 0.0, {}, [witness],
                        SuiteOptions(search_walks=0))
    assert row.verdict is Verdict.VIOLATED and row.trace == witness.trace.to_json() and row.depth == 15
    assert row.detail == (f"none within depth 4; witness {CLEAR_OF_2X8.name} carried here and replayed on model/;"
                          " its last operation breaks it from a state where it holds, after an earlier break at"
                          " step 9"), row.detail
    row = _beyond_depth("mainline", Geometry.parse("2x8"), witness.trace.violates, "alloc", 4, 0.0, {}, [],
                        SuiteOptions(search_walks=0))
    assert row.verdict is Verdict.NOT_INDUCTIVE


@pytest.mark.slow
def test_mainline_contig_hint_row_is_settled_by_its_witness() -> None:
    """At 1x8 nothing within depth 4 breaks block-contig-hint-exact/alloc (the shortest is 8 operations), which
    left the row NOT-INDUCTIVE in the gate; the carried breadth-first witness makes it VIOLATED."""
    name = "mainline__1x8__block-contig-hint-exact__alloc.json"
    witness = Witness(name, WITNESSES_MAINLINE[name])
    results = run_suite("mainline", ONE_BLOCK, SuiteOptions(solver=PORTFOLIO, depth=4),
                        invariants={witness.trace.violates}, ops={"alloc"}, witnesses=(witness,))
    (row,) = [r for r in results if r.op == "alloc"]
    assert row.verdict is Verdict.VIOLATED and row.trace == witness.trace.to_json()
    assert row.detail.startswith(f"none within depth 4; witness {name} carried here"), row.detail


@pytest.mark.slow
def test_linux_4_14_accurate_free_row_is_settled_by_its_witness() -> None:
    """At 1x8 bounded model checking to depth 4 finds no violation of chunk-hint-accurate-in-one-block/free (the
    shortest is 9 operations), which would leave the row NOT-INDUCTIVE; the carried witness makes it VIOLATED."""
    name = "linux-4.14__1x8__chunk-hint-accurate-in-one-block.json"
    witness = Witness(name, trace_from_json(json.loads((PROOF_TRACES / name).read_text())))
    results = run_suite("linux-4.14", ONE_BLOCK, SuiteOptions(solver=PORTFOLIO, depth=4),
                        invariants={witness.trace.violates},
                        ops={"free"}, witnesses=(witness,))
    (row,) = [r for r in results if r.op == "free"]
    assert row.verdict is Verdict.VIOLATED and row.trace == witness.trace.to_json()
    assert row.detail.startswith(f"none within depth 4; witness {name} carried here"), row.detail


@pytest.mark.slow
def test_the_random_search_settles_a_mainline_row_beyond_the_depth_and_the_c_agrees(tmp_path: Path) -> None:
    """mainline's scan-hint-largest-before/free at 1x8 is NOT-INDUCTIVE at depth 3 (its shortest violation is 4
    operations); through the CLI, the random search on the model makes it VIOLATED, and the trace it writes
    reproduces on 7.1.3's C."""
    proc = cli("prove", "--variant", "mainline", "--geometry", "1x8", "--invariant", "scan-hint-largest-before",
               "--op", "free", "--depth", "3", "--no-witnesses", "--json", "--traces", str(tmp_path))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (row,) = [r for r in json.loads(proc.stdout)["results"] if r["op"] == "free"]
    assert row["result"] == "VIOLATED" and row["detail"].startswith("none within depth 3; random walk "), row
    (trace_file,) = tmp_path.glob("mainline__1x8__scan-hint-largest-before__free.json")
    trace = trace_from_json(json.loads(trace_file.read_text()))
    assert first_violation(trace, "scan-hint-largest-before") == len(trace.ops) - 1 >= 3
    on_c = cli("replay", str(trace_file), "--source", str(kernel("linux-7.1.3").percpu_c))
    assert on_c.returncode == 0 and "reproduced" in on_c.stdout and "not reproduced" not in on_c.stdout, on_c.stdout


def _block_contig_exact(dump: dict[str, Any]) -> bool:
    """``block-contig-hint-exact`` of a one-block CTI state, judged here from its bits: the hint is the longest
    free run and lies on free bits."""
    chunk = dump["chunks"]["dynamic"]
    bits, (block,) = chunk["alloc_map"], chunk["md_blocks"]
    longest = max(len(run) for run in bits.split("1"))
    start, hint = block["contig_hint_start"], block["contig_hint"]
    return bool(hint == longest and set(bits[start:start + hint]) <= {"0"} and start + hint <= len(bits))


@pytest.mark.slow
def test_a_not_inductive_row_says_where_houdini_dropped_it() -> None:
    """mainline's block-contig-hint-exact/alloc at 1x8 is NOT-INDUCTIVE within depth 1 and no search.  Its row's
    own counterexample to induction assumes only what survived Houdini; ``houdini_drop`` gives the first one,
    from round 1's first batch, which assumed every invariant: a state that keeps the claim, which the
    allocation breaks."""
    proc = cli("prove", "--variant", "mainline", "--geometry", "1x8", "--invariant", "block-contig-hint-exact",
               "--op", "alloc", "--depth", "1", "--search-walks", "0", "--search-states", "0", "--no-witnesses",
               "--no-layout", "--json", "--block-states", "0")  # the project's config asks for the sets: minutes
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (row,) = [r for r in json.loads(proc.stdout)["results"] if r["op"] == "alloc"]
    assert row["result"] == "NOT-INDUCTIVE", row
    drop = row["houdini_drop"]
    assert (drop["round"], drop["op"], drop["status"], drop["without"]) == (1, "alloc", "sat", []), drop
    cti = drop["cti"]
    assert _block_contig_exact(cti["before"]) and not _block_contig_exact(cti["after"]), cti
    assert cti["op"]["op"] == "alloc"
