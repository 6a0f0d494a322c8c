"""``pcpu-verify check`` as CI runs it: a subprocess on a small config, its exit codes, cache and reports.

Each test writes its own config (one variant on one block of 4 bits, the
stateful machines and the layout proofs off; one test turns the layout
proofs on) so that the whole file stays within a few minutes;
the project's own matrix is checked by ``.ci/run``.  Exit codes
(pcpuverify/check_cli.py): 0 pass, 1 regression, 2 bad input, 3 UNKNOWN or
NOT RUN, 4 tool failure.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from installed import pcpu_verify_exe
from jsonschema.validators import validator_for

from pcpuverify.check import Cache, load_config, suite_key
from pcpuverify.check.baseline import Baseline
from pcpuverify.check.cache import CacheStats, _layout_payload
from pcpuverify.check.obligation import GeometrySetting, Obligation
from pcpuverify.check.outcomes import Outcome, Row
from pcpuverify.check.run import CheckRun, baseline_from
from pcpuverify.invariants.check import first_violation
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.trace import trace_from_json
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES

TESTS = Path(__file__).parent
SARIF_SCHEMA = TESTS / "schemas" / "sarif-schema-2.1.0.json"  # the OASIS schema: tests/schemas/README.md
JUNIT_SCHEMA = TESTS / "schemas" / "junit-10.xsd"  # Jenkins' JUnit XSD, as pytest vendors it
HINT_OVERLAP = TESTS / "traces" / "v1_hint_overlap.json"
BREADTH_FIRST = TESTS / "proof_traces" / "breadth-first"  # mainline's witnesses (tests/test_release_proofs.py)

# The seeded bug: the same-block branch of pcpu_block_update_hint_free sets
# right_free one short -- in a copy of the port and of its encoding alike,
# so conformance holds and the proof must find the broken block hints.
MODEL_LINE = ("s_block.right_free = contig\n", "s_block.right_free = contig - 1\n")  # the first: same block
ENCODING_LINE = ("right_free=z3.If(end == B, contig, s_block.right_free)",
                 "right_free=z3.If(end == B, contig - 1, s_block.right_free)")


def pcpu_verify(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = pcpu_verify_exe()
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd, check=False)


def check(tmp: Path, *args: str | Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``pcpu-verify check --config check.toml --json ARGS`` in ``tmp``: the process and its JSON summary."""
    result = pcpu_verify("check", "--config", tmp / "check.toml", "--json", *args, cwd=tmp)
    assert "Traceback" not in result.stderr, result.stderr
    try:
        summary = json.loads(result.stdout)
    except json.JSONDecodeError:
        summary = {}
    return result, summary


def write_config(tmp: Path, **overrides: Any) -> Path:
    keys: dict[str, Any] = {
        "variants": ["v1-patch09"],
        "geometries": ["1x4"],
        "depth": 2,
        "rlimit": 2_000_000_000,
        "seed": 0,
        "timeout": 900.0,
        "budget": 0,
        "jobs": 2,
        "cache-dir": "cache",
        "baseline": "baseline.json",
        "traces": ["traces"],
        "stateful-examples": 0,
        "layout": False,
    }
    keys.update(overrides)
    lines = ["[tool.pcpu-verify]"] + [f"{k} = {json.dumps(v)}" for k, v in keys.items() if v is not None]
    (tmp / "check.toml").write_text("\n".join(lines) + "\n")
    traces = tmp / "traces"
    traces.mkdir(exist_ok=True)
    shutil.copy(HINT_OVERLAP, traces / HINT_OVERLAP.name)
    return tmp / "check.toml"


def _method_copy(function: Any, mutation: tuple[str, str]) -> str:
    """The source of a method with one seeded change, ready to paste into a class body."""
    source = textwrap.dedent(inspect.getsource(function))
    mutated = source.replace(*mutation, 1)
    assert mutated != source, f"the mutation no longer applies to {function.__qualname__}"
    return textwrap.indent(mutated, "    ")


def write_mutant(tmp: Path, name: str, conformant: bool = True) -> Path:
    """A --variant-module: v1-patch09 with a seeded bug in a copy of ``pcpu_block_update_hint_free``.

    With ``conformant=False`` only the model has the bug and the encoding is
    v1-patch09's: the two disagree, and nothing may be proved.
    """
    model = _method_copy(PcpuAllocator.pcpu_block_update_hint_free, MODEL_LINE)
    encoding = _method_copy(SymPercpu.pcpu_block_update_hint_free, ENCODING_LINE)
    text = "\n".join([
        f'"""Variant {name}: a seeded bug in a copy of pcpu_block_update_hint_free."""',
        "from pcpuverify.check import register_variant",
        "from pcpuverify.model.percpu import *",
        "from pcpuverify.model.percpu import PcpuAllocator",
        "from pcpuverify.model.chunk import PcpuChunk",
        "from pcpuverify.symbolic.encode import *",
        "from pcpuverify.symbolic.encode import SymPercpu",
        "",
        "",
        "class Mutant(PcpuAllocator):",
        f'    variant = "{name}"',
        "",
        model,
        "",
        "class SymMutant(SymPercpu):",
        f'    variant = "{name}"',
        "",
        encoding,
        "",
        f'register_variant("{name}", Mutant, SymMutant if {conformant} else SymPercpu)',
        "",
    ])
    path = tmp / f"{name}.py"
    path.write_text(text)
    return path


# -- a baseline, then the same tree again: served from the cache ------------------------------------------


@pytest.fixture(scope="module")
def baselined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose baseline was written by ``check --update-baseline``."""
    tmp = tmp_path_factory.mktemp("baselined")
    write_config(tmp)
    start = time.perf_counter()
    result, summary = check(tmp, "--update-baseline")
    print(f"\nfirst run (--update-baseline): {time.perf_counter() - start:.1f}s")
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert summary["baseline_written"] and (tmp / "baseline.json").exists()
    assert summary["cache"]["written"] == 1
    return tmp


@pytest.mark.slow
def test_second_run_is_served_from_the_cache(baselined: Path) -> None:
    start = time.perf_counter()
    result, summary = check(baselined, "--junit", "out.xml", "--sarif", "out.sarif", "--markdown", "out.md")
    seconds = time.perf_counter() - start
    print(f"\nsecond run (cached): {seconds:.1f}s")
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert summary["cache"] == {"hits": 1, "misses": 0, "ignored": 0, "written": 0}
    assert summary["items"] == {"v1-patch09 1x4": "cached"}
    assert summary["outcomes"]["ok"] == summary["rows"] > 80
    assert seconds < 30
    baseline = json.loads((baselined / "baseline.json").read_text())
    known = baseline["suites"]["v1-patch09"]["1x4"]
    violated = [(i, op) for i, ops in known.items() for op, v in ops.items() if isinstance(v, dict)]
    assert violated and all(known[i][op]["trace"]["violates"] == i for i, op in violated)
    # the reports of this passing run
    validate_junit(baselined / "out.xml")
    validate_sarif(baselined / "out.sarif")
    assert "## pcpu-verify check: PASSED" in (baselined / "out.md").read_text()


def test_an_update_keeps_a_recorded_trace_that_still_breaks_its_row(tmp_path: Path) -> None:
    """A row still VIOLATED keeps the trace the baseline records while that trace still breaks the row's invariant
    first at its last step (another trace of the same finding is not a change: an update with new witnesses
    rewrote eight such rows); one that no longer does is replaced by the run's."""
    name = "block-contig-hint-exact"
    recorded = json.loads((BREADTH_FIRST / f"mainline__1x8__{name}__alloc.json").read_text())
    run_trace = {**recorded, "ops": [*recorded["ops"][:-1], {**recorded["ops"][-1], "pop_only": True}]}
    assert recorded != run_trace and first_violation(trace_from_json(run_trace), name) == len(run_trace["ops"]) - 1
    row = Row(Obligation("mainline", GeometrySetting(Geometry.parse("1x8")), name, "alloc"), "VIOLATED", "VIOLATED",
              Outcome.OK, trace=run_trace)
    run = CheckRun(load_config(write_config(tmp_path, variants=["mainline"], geometries=["1x8"])), [row], 0.0,
                   CacheStats())
    for before, after in ((recorded, recorded), ({**recorded, "ops": recorded["ops"][:-1]}, run_trace)):
        old = Baseline(suites={"mainline": {"1x8": {name: {"alloc": {"verdict": "VIOLATED", "trace": before}}}}})
        entry = baseline_from(run, old).suites["mainline"]["1x8"][name]["alloc"]
        assert entry == {"verdict": "VIOLATED", "trace": after}


@pytest.mark.slow
def test_corrupt_and_foreign_cache_entries_are_recomputed(tmp_path: Path) -> None:
    """A NONCONFORMANT suite stops at conformance, so it is cheap to cache, break and recompute."""
    write_config(tmp_path, variants=["noncon"])
    (tmp_path / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
    plugin = write_mutant(tmp_path, "noncon", conformant=False)
    first, s1 = check(tmp_path, "--variant-module", plugin)
    assert first.returncode == 4 and s1["cache"]["written"] == 1
    (entry,) = [p for p in (tmp_path / "cache").glob("*.json") if p.name != "history.json"]
    for damage in ("{ not json", json.dumps({"format": "pcpu-verify-check-cache/1", "key": "0" * 64, "payload": []}),
                   json.dumps({"format": "pcpu-verify-check-cache/1", "key": entry.stem, "payload": [{"x": 1}]})):
        entry.write_text(damage)
        again, s2 = check(tmp_path, "--variant-module", plugin)
        assert again.returncode == 4
        assert s2["cache"]["ignored"] == 1 and s2["cache"]["written"] == 1, s2["cache"]
    hit, s3 = check(tmp_path, "--variant-module", plugin)
    assert hit.returncode == 4 and s3["cache"]["hits"] == 1


# -- the first-chunk layout proofs -----------------------------------------------------------------------------

STATIC_OVERLAP = "first-chunk-static-region-not-allocatable"  # VIOLATED by design on v1-patch09 (setup set)


@pytest.mark.slow
def test_a_release_variant_has_no_layout_rows_and_does_not_crash_the_check(tmp_path: Path) -> None:
    """layout = true with mainline-fixed in the matrix: its pcpu_setup_first_chunk has no symbolic form, so it has
    suite rows and no layout item (the check used to crash on it with exit 4)."""
    write_config(tmp_path, variants=["mainline-fixed"], layout=True)
    # a layout property among the filters, or no layout item would be asked for at all
    result, summary = check(tmp_path, "--update-baseline", "--invariant", "block-nr-bits", "--invariant", STATIC_OVERLAP)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary["items"] == {"mainline-fixed 1x4": "ran"}
    assert {(r["op"], r["result"]) for r in summary["results"] if r["op"] != "replay"} == {
        (op, "PROVED") for op in ("init", "alloc", "free", "populate", "depopulate")}


@pytest.mark.slow
def test_block_labels_are_checked_for_the_2017_variants_and_skipped_where_nothing_is_owed(tmp_path: Path) -> None:
    """geometries = ["block8", "2xblock8"] beside mainline: the compositional rows run for fixed, held to the
    baseline, cached; mainline has no block8 and no 2xblock8 item (its 2xblock8 once crashed the check), as the
    filters name none of its rows there (5.2's block invariants and chunk_md rows)."""
    write_config(tmp_path, variants=["fixed", "mainline"], geometries=["block8", "2xblock8"], solver="bitwuzla")
    result, summary = check(tmp_path, "--update-baseline", "--invariant", "fit-left-is-free",
                            "--invariant", "chunk-contig-hint-region-free")
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary["items"] == {"fixed block8": "ran", "fixed 2xblock8": "ran"}
    proved = {(r["geometry"], r["invariant"], r["op"]) for r in summary["results"] if r["result"] == "PROVED"}
    assert proved == {("block8", "fit-left-is-free", "pcpu_find_block_fit"),
                      ("2xblock8", "chunk-contig-hint-region-free", "pcpu_chunk_update_hint"),
                      ("2xblock8", "chunk-contig-hint-region-free", "pcpu_free_area:same-block")}
    again, summary = check(tmp_path, "--invariant", "fit-left-is-free", "--invariant", "chunk-contig-hint-region-free")
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary["items"] == {"fixed block8": "cached", "fixed 2xblock8": "cached"}


def test_filters_that_select_no_obligation_of_the_matrix_are_an_error_not_a_pass(tmp_path: Path) -> None:
    """A block contract over PAGESxBITS geometries only: it once ran, found 0 rows and PASSED (exit 0)."""
    write_config(tmp_path)
    result, summary = check(tmp_path, "--invariant", "fit-left-is-free")
    assert result.returncode == 2 and summary == {}
    assert result.stderr.startswith("pcpu-verify: error: the --invariant/--op filters select no obligation of")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "baseline.json").exists()


@pytest.mark.slow
def test_layout_rows_are_checked_cached_and_filtered(tmp_path: Path) -> None:
    """layout = true: one row per layout property and precondition set, held to the baseline, cached, filtered."""
    owed = {(f"page4096/{s}", name) for name, prop in LAYOUT_PROPERTIES.items() for s in prop.sets}
    write_config(tmp_path, layout=True)
    start = time.perf_counter()
    first, s1 = check(tmp_path, "--update-baseline")
    print(f"\nlayout on, first run (--update-baseline): {time.perf_counter() - start:.1f}s")
    assert first.returncode == 0, (first.stdout[-3000:], first.stderr[-3000:])
    assert s1["items"] == {"v1-patch09 1x4": "ran", "v1-patch09 layout": "ran"}
    layout = [r for r in s1["results"] if r["op"] == "layout"]
    assert {(r["geometry"], r["invariant"]) for r in layout} == owed and len(layout) == len(owed)
    assert all(r["kind"] == "proof" and r["variant"] == "v1-patch09" for r in layout)
    static = {r["geometry"]: r for r in layout if r["invariant"] == STATIC_OVERLAP}
    assert static["page4096/setup"]["result"] == "VIOLATED" and static["page4096/setup"]["layout"]["counterexample"]
    suites = json.loads((tmp_path / "baseline.json").read_text())["suites"]
    entry = suites["v1-patch09"]["page4096/setup"][STATIC_OVERLAP]
    assert entry["layout"]["verdict"] == "VIOLATED" and "static_size=" in entry["layout"]["counterexample"]

    start = time.perf_counter()
    second, s2 = check(tmp_path, "--junit", "out.xml", "--sarif", "out.sarif", "--markdown", "out.md")
    print(f"layout on, second run (cached): {time.perf_counter() - start:.1f}s")
    assert second.returncode == 0, (second.stdout[-3000:], second.stderr[-3000:])
    assert s2["items"] == {"v1-patch09 1x4": "cached", "v1-patch09 layout": "cached"}
    assert s2["cache"] == {"hits": 2, "misses": 0, "ignored": 0, "written": 0}
    again = [r for r in s2["results"] if r["op"] == "layout"]
    assert len(again) == len(owed) and all(r["cached"] and r["outcome"] == "ok" for r in again)
    validate_junit(tmp_path / "out.xml")
    sarif = validate_sarif(tmp_path / "out.sarif")
    (hit,) = [r for r in sarif["runs"][0]["results"]
              if r["ruleId"] == STATIC_OVERLAP and r["properties"]["geometry"] == "page4096/setup"]
    assert hit["properties"]["function"] == "pcpu_setup_first_chunk" and hit["level"] == "note"
    assert hit["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("model/first_chunk.py")
    assert "## pcpu-verify check: PASSED" in (tmp_path / "out.md").read_text()

    # a layout property is an --invariant: its rows only, from the cache (no suite runs)
    third, s3 = check(tmp_path, "--invariant", STATIC_OVERLAP)
    assert third.returncode == 0 and s3["items"] == {"v1-patch09 layout": "cached"}, s3["items"]
    proofs = [r for r in s3["results"] if r["kind"] == "proof"]
    assert {(r["geometry"], r["invariant"]) for r in proofs} == {k for k in owed if k[1] == STATIC_OVERLAP}

    # an update keeps a layout row's recorded counterexample while the row stays VIOLATED: the solver's next
    # model is another description of the same finding, and rewriting it made every update touch such rows
    recorded = json.loads((tmp_path / "baseline.json").read_text())
    recorded["suites"]["v1-patch09"]["page4096/setup"][STATIC_OVERLAP]["layout"]["counterexample"] = "as recorded"
    (tmp_path / "baseline.json").write_text(json.dumps(recorded))
    kept, _ = check(tmp_path, "--update-baseline", "--invariant", STATIC_OVERLAP)
    assert kept.returncode == 0, kept.stderr[-2000:]
    entry = json.loads((tmp_path / "baseline.json").read_text())["suites"]["v1-patch09"]["page4096/setup"]
    assert entry[STATIC_OVERLAP]["layout"] == {"verdict": "VIOLATED", "counterexample": "as recorded"}

    # the budget: layout rows it does not reach are NOT RUN, never passed
    cut, s4 = check(tmp_path, "--no-cache", "--budget", "1")
    assert cut.returncode == 3 and s4["items"]["v1-patch09 layout"] == "not run", s4["items"]
    assert {r["outcome"] for r in s4["results"] if r["op"] == "layout"} == {"not run"}

    # a damaged layout entry is ignored (and so recomputed): a row missing, another variant's rows, UNKNOWN
    (path,) = [p for p in (tmp_path / "cache").glob("*.json")
               if p.name != "history.json" and '"op": "layout"' in p.read_text()]
    good = json.loads(path.read_text())
    rows = good["payload"]
    for payload in (rows[1:], [{**r, "variant": "v1"} for r in rows], [{**rows[0], "result": "UNKNOWN"}, *rows[1:]],
                    [{**r, "geometry": "page4096"} for r in rows]):
        path.write_text(json.dumps({**good, "payload": payload}))
        cache = Cache(tmp_path / "cache")
        assert cache.get(path.stem, _layout_payload("v1-patch09")) is None and cache.stats.ignored == 1
    path.write_text(json.dumps(good))
    assert Cache(tmp_path / "cache").get(path.stem, _layout_payload("v1-patch09")) is not None

    # the key is required and boolean: one error line, exit 2
    write_config(tmp_path, layout=None)
    assert_one_error_line(check(tmp_path)[0], "missing key 'layout'")
    write_config(tmp_path, layout="yes")
    assert_one_error_line(check(tmp_path)[0], "'layout'", "'yes'")
    write_config(tmp_path)  # layout = false: naming a layout property is refused
    assert_one_error_line(check(tmp_path, "--invariant", STATIC_OVERLAP)[0], "layout = true")


# -- the seeded bug, the nonconformant encoding, UNKNOWN, the budget ---------------------------------------


@pytest.mark.slow
def test_seeded_bug_fails_with_the_minimised_trace_in_markdown(baselined: Path) -> None:
    """The mutant is expected to behave as v1-patch09 does; its broken free path is a new violation."""
    tmp = baselined
    plugin = write_mutant(tmp, "right-free-one-short")
    baseline = json.loads((tmp / "baseline.json").read_text())
    baseline["suites"]["right-free-one-short"] = baseline["suites"]["v1-patch09"]
    (tmp / "mutant-baseline.json").write_text(json.dumps(baseline))
    result, summary = check(tmp, "--variant-module", plugin, "--variant", "right-free-one-short",
                            "--baseline", "mutant-baseline.json", "--markdown", "mutant.md",
                            "--sarif", "mutant.sarif", "--junit", "mutant.xml")
    assert result.returncode == 1, (result.stdout[-3000:], result.stderr[-3000:])
    new = [r for r in summary["results"] if r["outcome"] == "new violation"]
    assert ("block-hints-match-scan", "free") in {(r["invariant"], r["op"]) for r in new}
    assert all(r["minimised"]["violates"] == r["invariant"] for r in new)
    md = (tmp / "mutant.md").read_text()
    assert "## pcpu-verify check: FAILED: regression" in md
    assert "#### `block-hints-match-scan` / `free` on `right-free-one-short`" in md
    assert "Minimised trace" in md and "alloc_map" in md and "VIOLATED block-hints-match-scan" in md
    sarif = validate_sarif(tmp / "mutant.sarif")
    (hit,) = [r for r in sarif["runs"][0]["results"]
              if r["ruleId"] == "block-hints-match-scan" and r["properties"]["op"] == "free"]
    location = hit["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "model/percpu.py" or location["artifactLocation"]["uri"].endswith(
        "/model/percpu.py")
    assert hit["properties"]["function"] == "pcpu_free_area" and hit["baselineState"] == "new"
    related = [loc["physicalLocation"]["artifactLocation"]["uri"] for loc in hit["relatedLocations"]]
    assert any(uri.endswith("right-free-one-short.py") for uri in related)
    validate_junit(tmp / "mutant.xml")


@pytest.mark.slow
def test_against_reports_exactly_what_a_patch_moved(baselined: Path) -> None:
    """``--against v1-patch09`` on a one-line patch of it: only the rows the seeded bug moves are reported.

    The baseline has no rows of its own for the patch; the parent's known violations are expected of it (not
    reported as new), and the parent's traces replay on it.
    """
    tmp = baselined
    plugin = write_mutant(tmp, "right-free-short-again")
    result, summary = check(tmp, "--variant-module", plugin, "--variant", "right-free-short-again",
                            "--against", "v1-patch09")
    assert result.returncode == 1, (result.stdout[-3000:], result.stderr[-3000:])
    moved = [r for r in summary["results"] if r["outcome"] != "ok"]
    assert moved and {r["variant"] for r in moved} == {"right-free-short-again"}
    # new violations, and verdicts moved by them (an invariant Houdini now drops leaves others NOT-INDUCTIVE)
    assert {r["outcome"] for r in moved} <= {"new violation", "changed"}, moved
    new = [r for r in moved if r["outcome"] == "new violation"]
    assert ("block-hints-match-scan", "free") in {(r["invariant"], r["op"]) for r in new}
    assert all(r["op"] in ("free", "stateful") for r in new), new  # the seeded bug is in the free path
    assert all(r["result"] == "NOT-INDUCTIVE" for r in moved if r["outcome"] == "changed"), moved
    replayed = [r for r in summary["results"] if r["kind"] == "trace" and r["variant"] == "right-free-short-again"]
    assert replayed and all(r["outcome"] == "ok" for r in replayed)  # v1-patch09's traces, on the patch
    known = [r for r in summary["results"] if r["result"] == "VIOLATED" and r["outcome"] == "ok"]
    assert known  # the parent's findings are expected, not new
    refused, _ = check(tmp, "--variant-module", plugin, "--variant", "right-free-short-again", "--against", "nope")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


def test_encoding_that_disagrees_with_the_model_fails_conformance(tmp_path: Path) -> None:
    write_config(tmp_path)
    plugin = write_mutant(tmp_path, "model-only-bug", conformant=False)
    (tmp_path / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
    result, summary = check(tmp_path, "--variant-module", plugin, "--variant", "model-only-bug",
                            "--markdown", "out.md", "--junit", "out.xml")
    assert result.returncode == 4, (result.stdout[-3000:], result.stderr[-3000:])
    proofs = [r for r in summary["results"] if r["kind"] == "proof"]
    assert proofs and all(r["result"] == "NONCONFORMANT" for r in proofs)
    assert "right_free" in proofs[0]["detail"]
    assert "Tool failures" in (tmp_path / "out.md").read_text()
    validate_junit(tmp_path / "out.xml")


@pytest.mark.slow
def test_unknown_fails_with_its_own_exit_code_and_is_not_cached(baselined: Path) -> None:
    result, summary = check(baselined, "--rlimit", "1", "--invariant", "block-hints-match-scan", "--op", "alloc")
    assert result.returncode == 3, (result.stdout[-3000:], result.stderr[-3000:])
    assert summary["outcomes"]["unknown"] > 0
    assert summary["cache"]["written"] == 0


@pytest.mark.slow
def test_budget_reports_unreached_rows_as_not_run(baselined: Path) -> None:
    result, summary = check(baselined, "--depth", "3", "--budget", "0.5", "--junit", "budget.xml")
    assert result.returncode == 3, (result.stdout[-3000:], result.stderr[-3000:])
    assert summary["budget_exhausted"] is True
    not_run = [r for r in summary["results"] if r["outcome"] == "not run"]
    assert not_run and all(r["result"] == "NOT RUN" for r in not_run)
    root = validate_junit(baselined / "budget.xml")
    assert junit_skipped(root) == len(not_run)


# -- bad input: one line, exit 2 --------------------------------------------------------------------------------


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pcpu-verify: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_config_key(tmp_path: Path) -> None:
    write_config(tmp_path, depth=None)
    assert_one_error_line(check(tmp_path)[0], "missing key 'depth'")


def test_invalid_config_value(tmp_path: Path) -> None:
    write_config(tmp_path, jobs="many")
    assert_one_error_line(check(tmp_path)[0], "'jobs'", "'many'")


@pytest.mark.parametrize("key", ["search-walks", "search-states", "block-states"])
@pytest.mark.parametrize("walks", [-1, "many", True])
def test_ill_typed_search_budget(tmp_path: Path, key: str, walks: object) -> None:
    write_config(tmp_path, **{key: walks})
    assert_one_error_line(check(tmp_path)[0], f"'{key}' must be", repr(walks))


def test_unknown_config_key(tmp_path: Path) -> None:
    write_config(tmp_path, jbos=2)
    assert_one_error_line(check(tmp_path)[0], "unknown key 'jbos'")


def test_unknown_variant(tmp_path: Path) -> None:
    write_config(tmp_path)
    assert_one_error_line(check(tmp_path, "--variant", "v2")[0], "unknown variant 'v2'")


def test_impossible_geometry(tmp_path: Path) -> None:
    write_config(tmp_path, geometries=["1x12"])
    assert_one_error_line(check(tmp_path)[0], "block_bits must be a power of two")


def test_malformed_baseline(tmp_path: Path) -> None:
    write_config(tmp_path)
    (tmp_path / "baseline.json").write_text('{"format": "pcpu-verify-baseline/1", "suites": {"v1": {"1x4": '
                                            '{"free-bits-count": {"alloc": "MAYBE"}}}}}')
    assert_one_error_line(check(tmp_path)[0], "suites.v1.1x4.free-bits-count.alloc", "'MAYBE'")


@pytest.mark.parametrize(("setting", "op", "fragment"), [
    ("2y8", "alloc", "not a geometry"),  # neither PAGESxBITS nor page<N>/<set>
    ("page4096/nowhere", "layout", "not a geometry"),  # no such precondition set
    ("2X8", "alloc", "not written as the tool writes it"),  # read back, it would be written "2x8"
    ("stateful", "stateful", "the stateful rows live in 'stateful'"),
    ("page4096/setup", "alloc", "a layout row's op is 'layout'"),
])
def test_baseline_keys_name_a_setting(tmp_path: Path, setting: str, op: str, fragment: str) -> None:
    write_config(tmp_path)
    (tmp_path / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {
        "v1": {setting: {"free-bits-count": {op: "PROVED"}}}}}))
    assert_one_error_line(check(tmp_path)[0], f"suites.v1.{setting}", fragment)


def test_malformed_trace(tmp_path: Path) -> None:
    write_config(tmp_path)
    (tmp_path / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
    (tmp_path / "traces" / "bad.json").write_text('{"format": "pcpu-verify-trace/1", "variant": "v1"')
    assert_one_error_line(check(tmp_path)[0], "bad.json", "not JSON")


def test_missing_baseline_says_how_to_create_it(tmp_path: Path) -> None:
    write_config(tmp_path)
    assert_one_error_line(check(tmp_path)[0], "--update-baseline")


# -- schema checks -----------------------------------------------------------------------------------------------


@functools.cache
def sarif_validator() -> Any:
    """The validator of the draft the official SARIF schema declares, with the format checks jsonschema can make."""
    schema = json.loads(SARIF_SCHEMA.read_text())
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate_sarif(path: Path) -> dict[str, Any]:
    """Against the official SARIF 2.1.0 schema (tests/schemas/), and the fields code scanning reads."""
    doc = json.loads(path.read_text())
    errors = [f"{e.json_path}: {e.message}" for e in sarif_validator().iter_errors(doc)]
    assert not errors, "\n".join(errors[:20])
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "pcpu-verify"
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert result["ruleId"] in rule_ids and rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] and physical["region"]["startLine"] >= 1
    return doc


@functools.cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_SCHEMA))


def validate_junit(path: Path) -> ET.Element:
    """Against Jenkins' junit-10.xsd (tests/schemas/), and the counts CI systems show: suites, cases, outcomes."""
    errors = [str(e) for e in junit_schema().iter_errors(str(path))]
    assert not errors, "\n".join(errors[:5])
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root:
        assert suite.tag == "testsuite" and suite.get("name")
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        totals["tests"] += len(cases)
        float(suite.get("time", "x"))
        for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            n = sum(1 for c in cases if c.find(tag) is not None)
            assert int(suite.get(attr, "-1")) == n
            totals[attr] += n
        for case in cases:
            assert case.get("name") and case.get("classname")
            float(case.get("time", "x"))
            outcomes = [child for child in case if child.tag in ("failure", "error", "skipped")]
            assert len(outcomes) <= 1
            for child in outcomes:
                assert child.get("message")
                if child.tag != "skipped":
                    assert child.get("type")
    for attr in ("tests", "failures", "errors"):  # the XSD gives <testsuites> no "skipped"
        assert int(root.get(attr, "-1")) == totals[attr]
    return root


def junit_skipped(root: ET.Element) -> int:
    return sum(int(suite.get("skipped", "0")) for suite in root.iter("testsuite"))


@pytest.mark.slow
def test_ctrl_c_leaves_no_report_and_no_cache_entry(tmp_path: Path) -> None:
    """Ctrl-C while the suite runs in the pool: no report, no entry and no lock for the suite it stopped.

    The interrupt is sent on the progress line that ends the regression traces, the step before the suite
    is solved, not after a fixed sleep: on a fast machine a 1x4 suite had finished (and rightly cached)
    within the 4 s the test used to wait.  At 2x4 the suite takes about 12 s here.
    """
    config = write_config(tmp_path, geometries=["2x4"])
    (tmp_path / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
    exe = pcpu_verify_exe()
    proc = subprocess.Popen(
        [exe, "check", "--config", config, "--junit", "r/out.xml", "--markdown", "r/out.md"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal delivers Ctrl-C
    )
    assert proc.stderr is not None
    before = []
    for line in proc.stderr:
        before.append(line)
        if "regression traces: done" in line:
            break
    assert not any("v1-patch09 2x4: done" in line for line in before), before
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert "v1-patch09 2x4: done" not in err
    assert not (tmp_path / "r").exists()
    key = suite_key(load_config(config), "v1-patch09", Geometry.parse("2x4"))
    cache = tmp_path / "cache"
    assert not (cache / f"{key}.json").exists() and not (cache / f"{key}.lock").exists()
    assert not cache.exists() or not [p for p in cache.iterdir() if p.name.startswith(key)]


def test_a_changed_regression_trace_re_checks_the_suites(tmp_path: Path) -> None:
    """The suites carry the regression traces to rows left NOT-INDUCTIVE: the traces are part of their key."""
    config = load_config(write_config(tmp_path))
    one_block = Geometry.parse("1x4")
    before = suite_key(config, "v1-patch09", one_block)
    assert suite_key(config, "v1-patch09", one_block) == before
    (tmp_path / "traces" / "another.json").write_text(HINT_OVERLAP.read_text())
    assert suite_key(config, "v1-patch09", one_block) != before
