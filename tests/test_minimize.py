"""Counterexample minimisation and what a counterexample becomes: a 1-minimal trace, an HTML page, a pytest file.

Issue 4's done-when: ``pcpu-verify minimize`` reduces a padded trace (the
minimal one plus at least 20 irrelevant operations and inflated sizes) back
to a 1-minimal trace, shown in a CLI test.  1-minimality is checked here
directly, independently of counterexamples/minimize.py: every single
removal, every single lowering of an argument and every single geometry
reduction is replayed and must no longer break the invariant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pcpuverify.counterexamples.minimize import FreeOf, _concrete, _linked, minimize
from pcpuverify.draw import fresh_scan
from pcpuverify.invariants.check import first_violation
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, FirstChunkInit, Free, Op, Populate
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import Trace, TraceError, load_trace, trace_from_json

try:
    from test_cli import BAD_INPUTS, FORMAT, HINT_OVERLAP, assert_one_error_line, chunk_trace, pcpu_verify, write_trace
except ImportError:  # run from the repository root as a package
    from tests.test_cli import (
        BAD_INPUTS,
        FORMAT,
        HINT_OVERLAP,
        assert_one_error_line,
        chunk_trace,
        pcpu_verify,
        write_trace,
    )

CLAIM = "chunk-contig-hint-not-above-free-run"


def _alloc(bits: int, align: int = 1, pop_only: bool = False) -> dict[str, Any]:
    return {"op": "alloc", "bits": bits, "align": align, "pop_only": pop_only}


def _free(bit_off: int) -> dict[str, Any]:
    return {"op": "free", "bit_off": bit_off}


def _pages(op: str, start: int, end: int) -> dict[str, Any]:
    return {"op": op, "page_start": start, "page_end": end}


# v1_hint_overlap.json (2x8: alloc 1 align 4, alloc 5 pop_only, free it, alloc 10)
# with every size doubled on a chunk of 4 pages of 16 bits, pages 2 and 3 not
# populated at first, and 24 operations around it that break nothing: the
# invariant breaks at the last step only.
PADDED = {
    "format": FORMAT,
    "variant": "v1",
    "geometry": {"block_bits": 16, "nr_pages": 4, "populated": [0, 1]},
    "init": {"kind": "chunk"},
    "ops": [
        _pages("populate", 3, 4),
        _pages("depopulate", 3, 4),
        _pages("populate", 3, 4),
        _alloc(8),
        _free(0),
        _alloc(2, 8),  # the minimal trace's first alloc, doubled
        _alloc(10, 1, True),  # its second
        _pages("depopulate", 2, 3),
        _free(2),  # its free
        _pages("depopulate", 3, 4),
        _pages("populate", 3, 4),
        _pages("populate", 3, 4),
        _alloc(8, 2),
        _pages("depopulate", 2, 4),
        _alloc(3, 4),
        _pages("populate", 2, 3),
        _pages("depopulate", 2, 3),
        _alloc(3, 4),
        _pages("populate", 3, 4),
        _free(16),
        _alloc(3, 4),
        _alloc(8, 4),
        _free(16),
        _free(20),
        _pages("populate", 3, 4),
        _free(2),
        _free(12),
        _alloc(20),  # its last alloc, doubled: the chunk's contig_hint now overlaps it
    ],
    "violates": CLAIM,
}

REFUSED = (OpError, TraceError, LayoutError, GeometryError)


# -- an independent check of 1-minimality ----------------------------------------------


def _breaks(trace: Trace, name: str) -> bool:
    """Whether ``trace`` is a valid trace that breaks ``name``; one the reference refuses breaks nothing."""
    try:
        return first_violation(trace_from_json(trace.to_json()), name) is not None
    except REFUSED:
        return False


def _as_calls(trace: Trace) -> list[tuple[Op, int | None]]:
    """Each op with, for a free, the index of the op whose allocation it frees."""
    ref = Reference(trace.variant, trace.geometry, trace.init)
    live: dict[tuple[bool, int], int] = {}
    calls: list[tuple[Op, int | None]] = []
    for index, op in enumerate(trace.ops):
        got = ref.apply(op).bit_off
        calls.append((op, live.pop((op.reserved, op.bit_off)) if isinstance(op, Free) else None))
        if got is not None:
            live[(op.reserved, got)] = index
    return calls


def _from_calls(trace: Trace, calls: list[tuple[int, Op, int | None]]) -> Trace:
    """Concrete ops for ``(index, op, freed index)`` calls: a free frees what its alloc returned, or goes."""
    try:
        ref = Reference(trace.variant, trace.geometry, trace.init)
    except REFUSED:
        return trace.with_ops(())
    returned: dict[int, int] = {}
    ops: list[Op] = []
    for index, op, freed in calls:
        if freed is not None:
            if freed not in returned:
                continue
            op = replace(op, bit_off=returned.pop(freed))
        try:
            got = ref.apply(op).bit_off
        except OpError:
            got = None
        if got is not None:
            returned[index] = got
        ops.append(op)
    return trace.with_ops(tuple(ops))


def _lower(op: Op) -> Iterator[Op]:
    if isinstance(op, Alloc):
        yield from (replace(op, bits=b) for b in range(1, op.bits))
        yield from (replace(op, align=1 << k) for k in range(op.align.bit_length() - 1))
        if op.pop_only:
            yield replace(op, pop_only=False)
    elif isinstance(op, (Populate, Depopulate)):
        for s in range(op.page_start, op.page_end):
            for e in range(s + 1, op.page_end + 1):
                if (s, e) != (op.page_start, op.page_end):
                    yield replace(op, page_start=s, page_end=e)


def one_step_reductions(trace: Trace) -> Iterator[tuple[str, Trace]]:
    """Every single removal, argument lowering and geometry reduction of ``trace``."""
    calls = [(i, op, freed) for i, (op, freed) in enumerate(_as_calls(trace))]
    for i, op, _ in calls:
        yield f"remove ops[{i}]", _from_calls(trace, [c for c in calls if c[0] != i])
        for lower in _lower(op):
            yield f"ops[{i}] -> {lower}", _from_calls(trace, [(j, lower if j == i else o, f) for j, o, f in calls])
    g = trace.geometry
    if isinstance(trace.init, FirstChunkInit):
        yield from _smaller_layouts(trace, trace.init, calls)
        return
    for pages in range(1, g.nr_pages):
        smaller = Geometry(g.block_bits, pages, tuple(p for p in g.populated if p < pages))
        clipped = [
            (j, replace(o, page_end=min(o.page_end, pages)) if isinstance(o, (Populate, Depopulate)) else o, f)
            for j, o, f in calls
            if not (isinstance(o, (Populate, Depopulate)) and o.page_start >= pages)
        ]
        yield f"{pages} pages", _from_calls(replace(trace, geometry=smaller), clipped)
    bits = 4
    while bits < g.block_bits:
        smaller = replace(trace, geometry=Geometry(bits, g.nr_pages, g.populated))
        aligned = [(j, replace(o, align=min(o.align, bits)) if isinstance(o, Alloc) else o, f) for j, o, f in calls]
        yield f"block_bits {bits}", _from_calls(smaller, aligned)
        scaled = [
            (j, replace(o, bits=-(-o.bits * bits // g.block_bits), align=max(1, o.align * bits // g.block_bits)), f)
            if isinstance(o, Alloc) else (j, o, f)
            for j, o, f in calls
        ]
        yield f"block_bits {bits}, sizes scaled", _from_calls(smaller, scaled)
        bits *= 2
    for page in g.populated:
        fewer = Geometry(g.block_bits, g.nr_pages, tuple(p for p in g.populated if p != page))
        yield f"page {page} not populated", _from_calls(replace(trace, geometry=fewer), calls)


def _smaller_layouts(trace: Trace, init: FirstChunkInit, calls: list[tuple[int, Op, int | None]]
                     ) -> Iterator[tuple[str, Trace]]:
    """A first chunk's page halved (sizes scaled), its dyn_size and reserved_size lowered by whole pages."""
    g = trace.geometry
    bits = 4
    while bits < g.block_bits:
        sizes = [-(-size * bits // g.block_bits) for size in (init.static_size, init.reserved_size, init.dyn_size)]
        smaller = Trace(trace.variant, Geometry(bits, 1, (0,)), FirstChunkInit(*sizes), trace.ops, trace.violates)
        aligned = [(j, replace(o, align=min(o.align, bits)) if isinstance(o, Alloc) else o, f) for j, o, f in calls]
        yield f"block_bits {bits}", _from_calls(smaller, aligned)
        bits *= 2
    page = g.page_size
    for dyn in range(page, init.dyn_size, page):
        yield f"dyn_size {dyn}", _from_calls(replace(trace, init=replace(init, dyn_size=dyn)), calls)
    for reserved in range(init.reserved_size - page, -1, -page):
        yield f"reserved_size {reserved}", _from_calls(replace(trace, init=replace(init, reserved_size=reserved)), calls)
    if init.reserved_size:
        yield "reserved_size 0", _from_calls(replace(trace, init=replace(init, reserved_size=0)), calls)


def assert_one_minimal(trace: Trace, name: str) -> None:
    assert _breaks(trace, name), "the minimised trace must still break the invariant"
    still = [what for what, smaller in one_step_reductions(trace) if _breaks(smaller, name)]
    assert still == [], f"not 1-minimal: still breaks {name} after {still}"


# -- the done-when: a padded trace minimised on the command line ------------------------------


def test_minimize_reduces_a_padded_trace_to_a_1_minimal_one(tmp_path: Path) -> None:
    padded = trace_from_json(PADDED)
    assert len(padded.ops) >= len(load_trace(HINT_OVERLAP).ops) + 20
    assert first_violation(padded, CLAIM) == len(padded.ops) - 1  # the padding breaks nothing on its own

    path = write_trace(tmp_path, PADDED, "padded.json")
    before = path.read_bytes()
    result = pcpu_verify("minimize", path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = tmp_path / "padded.min.json"
    assert path.read_bytes() == before, "the input is never overwritten by default"
    minimal = load_trace(out)
    assert minimal.violates == CLAIM and minimal.variant == "v1"
    assert len(minimal.ops) <= 4
    assert first_violation(minimal, CLAIM) == len(minimal.ops) - 1
    assert_one_minimal(minimal, CLAIM)

    first = result.stdout.splitlines()[0]
    assert f"{len(padded.ops)} ops -> {len(minimal.ops)} ops" in first
    assert "4x16" in first and CLAIM in first
    assert f"wrote {out}" in result.stdout
    # the minimised trace replayed and drawn step by step, its wrong fields against a fresh scan
    assert f"step {len(minimal.ops) - 1}: " in result.stdout
    assert f"VIOLATED {CLAIM}" in result.stdout
    assert "contig_hint: " in result.stdout and "(fresh scan: " in result.stdout


def test_minimize_is_deterministic_and_keeps_a_1_minimal_trace() -> None:
    padded = trace_from_json(PADDED)
    once = minimize(padded)
    assert minimize(padded) == once
    assert minimize(once) == once


@pytest.mark.parametrize("path", sorted((Path(__file__).parent / "traces").rglob("*.json")),
                         ids=lambda p: p.name)
def test_every_committed_counterexample_minimizes_to_a_1_minimal_trace(path: Path) -> None:
    trace = load_trace(path)
    minimal = minimize(trace)
    assert minimal.violates == trace.violates
    assert len(minimal.ops) <= len(trace.ops)
    assert minimal.geometry.nr_bits <= trace.geometry.nr_bits
    assert_one_minimal(minimal, minimal.violates or "")


def test_minimize_names_the_first_broken_invariant_when_the_trace_claims_none() -> None:
    data = json.loads(HINT_OVERLAP.read_text())
    del data["violates"]
    minimal = minimize(trace_from_json(data))
    # step 3 breaks four invariants; the step invariants are checked first
    assert minimal.violates == "bitmap-access-in-bounds"
    assert first_violation(minimal, minimal.violates) == len(minimal.ops) - 1


def test_frees_follow_their_allocs_when_an_alloc_is_lowered_or_removed() -> None:
    trace = trace_from_json(chunk_trace([_alloc(3), _alloc(2), _alloc(4), _free(3), _free(5)]))
    linked = _linked(trace)
    assert [item for _, item in linked.steps[3:]] == [FreeOf(1), FreeOf(2)]
    lowered = replace(linked, steps=((0, Alloc(1)), *linked.steps[1:]))
    ops, _ = _concrete("v1", lowered)
    assert ops[3:] == (Free(1), Free(3))  # both allocations moved down by two bits, and so did their frees
    removed = replace(linked, steps=linked.steps[:1] + linked.steps[2:])
    ops, kept = _concrete("v1", removed)
    assert ops == (Alloc(3), Alloc(4), Free(3))  # the free of the removed alloc went with it
    assert [sid for sid, _ in kept] == [0, 2, 4]


def test_minimize_first_chunk_trace() -> None:
    data = {
        "format": FORMAT,
        "variant": "v1",
        "geometry": {"block_bits": 16},
        "init": {"kind": "first_chunk", "static_size": 20, "reserved_size": 108, "dyn_size": 256},
        "ops": [{"op": "alloc", "bits": 3, "reserved": True}, _alloc(2, 8), _alloc(10, 1, True), _free(2), _alloc(20)],
        "violates": CLAIM,
    }
    minimal = minimize(trace_from_json(data))
    assert isinstance(minimal.init, FirstChunkInit)
    assert len(minimal.ops) < 5
    assert first_violation(minimal, CLAIM) == len(minimal.ops) - 1
    assert load_trace_roundtrip(minimal) == minimal


def load_trace_roundtrip(trace: Trace) -> Trace:
    return trace_from_json(json.loads(json.dumps(trace.to_json())))


# -- minimize on the command line: output, exit codes -------------------------------------------


def test_minimize_output_option_and_json(tmp_path: Path) -> None:
    path = write_trace(tmp_path, json.loads(HINT_OVERLAP.read_text()), "t.json")
    out = tmp_path / "sub.json"
    result = pcpu_verify("minimize", "--json", "-o", out, path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["invariant"] == CLAIM and data["output"] == str(out)
    assert (data["original_ops"], data["minimized_ops"]) == (4, len(load_trace(out).ops))
    assert data["replay"]["trace"] == load_trace(out).to_json()
    assert not (tmp_path / "t.min.json").exists()
    # -o may name the input: then, and only then, it is replaced
    again = pcpu_verify("minimize", "-o", path, path)
    assert again.returncode == 0, again.stderr
    assert load_trace(path) == load_trace(out)


def test_minimize_of_a_trace_that_breaks_nothing_exits_1_with_one_line(tmp_path: Path) -> None:
    path = write_trace(tmp_path, chunk_trace([_alloc(2), _free(0)]))
    result = pcpu_verify("minimize", path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "violates no invariant" in lines[0], result.stderr
    assert result.stdout == "" and not (tmp_path / "trace.min.json").exists()


def test_minimize_of_a_claim_that_does_not_reproduce_exits_1(tmp_path: Path) -> None:
    path = write_trace(tmp_path, json.loads(HINT_OVERLAP.read_text()) | {"violates": "free-bits-count"})
    result = pcpu_verify("minimize", path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "does not violate 'free-bits-count'" in lines[0], result.stderr


@pytest.mark.parametrize("case", ["missing file", "not JSON", "unknown variant", "block_bits 12", "align 3",
                                  "free of a non-allocated offset", "first chunk not page aligned"])
def test_minimize_bad_input_is_one_error_line_and_exit_2(tmp_path: Path, case: str) -> None:
    content, fragments = BAD_INPUTS[case]
    path = tmp_path / "trace.json" if content is None else write_trace(tmp_path, content)
    assert_one_error_line(pcpu_verify("minimize", path), *fragments)
    assert not (tmp_path / "trace.min.json").exists()


def test_minimize_bad_claim_and_unwritable_output_are_one_error_line(tmp_path: Path) -> None:
    bad = write_trace(tmp_path, chunk_trace([_alloc(2)], violates="no-such-invariant"))
    assert_one_error_line(pcpu_verify("minimize", bad), "no-such-invariant")
    good = write_trace(tmp_path, json.loads(HINT_OVERLAP.read_text()), "good.json")
    assert_one_error_line(pcpu_verify("minimize", "-o", tmp_path / "no" / "dir.json", good), "cannot write")


# -- replay: fresh scans, --html, --pytest -------------------------------------------------------


def test_fresh_scan_sets_each_wrong_field_against_the_bitmap() -> None:
    ref = Reference("v1", Geometry(8, 2, (0, 1)), ChunkInit())
    ref.apply(Alloc(3))
    state: dict[str, Any] = ref.dump()
    block = state["chunks"]["dynamic"]["md_blocks"][0]
    block["contig_hint"], block["left_free"] = 7, 2  # as a stale hint would be
    assert fresh_scan(state, "dynamic", "md_blocks[0].contig_hint", 8) == (7, 5)
    assert fresh_scan(state, "dynamic", "md_blocks[0].contig_hint_start", 8) == (3, 3)
    assert fresh_scan(state, "dynamic", "md_blocks[0].left_free", 8) == (2, 0)
    assert fresh_scan(state, "dynamic", "md_blocks[0].right_free", 8) == (5, 5)
    assert fresh_scan(state, "dynamic", "free_bits", 8) == (13, 13)
    assert fresh_scan(state, "dynamic", "contig_hint", 8) == (13, 13)
    assert fresh_scan(state, "dynamic", "nr_empty_pop_pages", 8) == (1, 1)
    assert fresh_scan(state, "dynamic", "alloc_map", 8) is None


def test_replay_shows_each_wrong_field_next_to_a_fresh_scan() -> None:
    result = pcpu_verify("replay", HINT_OVERLAP)
    assert result.returncode == 0, result.stderr
    tail = result.stdout[result.stdout.index("step 3: "):]
    assert "  contig_hint: 10 (fresh scan: 5)" in tail
    assert "  contig_hint_start: 6 (fresh scan: 11)" in tail
    assert "  nr_empty_pop_pages: 1 (fresh scan: 0)" in tail
    assert "(fresh scan" not in result.stdout[: result.stdout.index("step 3: ")]


def test_replay_html_is_a_self_contained_page_of_the_drawing(tmp_path: Path) -> None:
    page = tmp_path / "replay.html"
    result = pcpu_verify("replay", "--html", page, HINT_OVERLAP)
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "<style>" in html
    for attr in ("src=", "href=", "@import", "url("):
        assert attr not in html.lower(), attr
    assert "http://" not in html and "https://" not in html
    assert "step 3</span>: alloc bits=10 align=1 -&gt; bit_off 1" in html
    assert "chunk-contig-hint-not-above-free-run" in html and "(fresh scan: 5)" in html
    assert "|########|###.....|" in html
    assert not list(tmp_path.glob(".*.tmp")), "written atomically: no temporary file left"


def _run_pytest(test_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True, text=True, timeout=120, cwd=test_file.parent, check=False,
    )


@pytest.mark.parametrize("trace_path", [HINT_OVERLAP, Path(__file__).parent / "traces" / "found"
                                        / "v1-patch09__pop-only-alloc-on-populated-pages.json"],
                         ids=lambda p: p.name)
def test_replay_pytest_writes_a_regression_test_that_passes(tmp_path: Path, trace_path: Path) -> None:
    test_file = tmp_path / "test_regression.py"
    result = pcpu_verify("replay", "--pytest", test_file, trace_path)
    assert result.returncode == 0, result.stderr
    text = test_file.read_text()
    claim = json.loads(trace_path.read_text())["violates"]
    assert repr(claim) in text and "first_violation" in text and "'fixed'" in text
    assert json.loads(text.split('json.loads(r"""')[1].split('""")')[0]) == load_trace(trace_path).to_json()
    run = _run_pytest(test_file)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_the_regression_test_fails_when_the_violation_moves(tmp_path: Path) -> None:
    test_file = tmp_path / "test_regression.py"
    assert pcpu_verify("replay", "--pytest", test_file, HINT_OVERLAP).returncode == 0
    test_file.write_text(test_file.read_text().replace("STEP = 3", "STEP = 2"))
    run = _run_pytest(test_file)
    assert run.returncode == 1 and "1 failed, 1 passed" in run.stdout, run.stdout


def test_replay_pytest_of_a_trace_that_breaks_nothing_writes_nothing(tmp_path: Path) -> None:
    path = write_trace(tmp_path, chunk_trace([_alloc(2)]))
    test_file = tmp_path / "test_regression.py"
    result = pcpu_verify("replay", "--pytest", test_file, path)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "violates no invariant" in result.stderr
    assert result.stdout == "" and not test_file.exists()


def test_replay_unwritable_html_is_one_error_line(tmp_path: Path) -> None:
    assert_one_error_line(pcpu_verify("replay", "--html", tmp_path / "no" / "r.html", HINT_OVERLAP), "cannot write")
