"""The ``pcpu-verify`` command as a user runs it: a subprocess on real trace files, its output, its exit codes.

Exit codes (pcpuverify/cli.py): 0 the replay ran and every claim of the
trace held, 1 the trace's ``violates`` claim did not reproduce, 2 bad input
-- always one line on stderr starting ``pcpu-verify: error:``, never a
traceback (DESIGN.md, "Pre-merge check").
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.utils import make_default_short_help
from installed import pcpu_verify_exe

from pcpuverify import cli

TRACES = Path(__file__).parent / "traces"
HINT_OVERLAP = TRACES / "v1_hint_overlap.json"
FORMAT = "pcpu-verify-trace/1"


def pcpu_verify(*args: str | Path, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = pcpu_verify_exe()
    return subprocess.run(
        [exe, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


def write_trace(tmp_path: Path, data: dict[str, Any] | str | bytes, name: str = "trace.json") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def chunk_trace(ops: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A 2x8 all-populated chunk trace of ``v1`` with ``ops``; ``fields`` override or add top-level keys."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "variant": "v1",
        "geometry": {"block_bits": 8, "nr_pages": 2, "populated": [0, 1]},
        "init": {"kind": "chunk"},
        "ops": ops,
    }
    data.update(fields)
    return data


def test_replay_starts_without_the_check_and_hypothesis_and_every_command_is_listed() -> None:
    """`check`, `explore` and `diff` are loaded when named (cli.py, LAZY_COMMANDS), and still listed and run."""
    probe = ("import sys, pcpuverify.cli as cli; print(sorted(m for m in ('pcpuverify.check', 'pcpuverify.kernel_cli',"
             " 'hypothesis') if m in sys.modules)); print(' '.join(cli.main.list_commands(None)))")
    loaded, commands = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                      check=True).stdout.splitlines()
    assert loaded == "[]"
    assert commands.split() == ["check", "diff", "explore", "minimize", "prove", "replay"]
    for command in ("check", "explore", "diff"):
        result = pcpu_verify(command, "--help")
        assert result.returncode == 0 and f"Usage: pcpu-verify {command} [OPTIONS]" in result.stdout, result.stderr


def test_help_lists_every_command_without_loading_the_lazy_ones() -> None:
    """`pcpu-verify --help` lists `check`, `explore` and `diff` from their summaries in cli.py, without importing
    them (0.7 s of CPU a call before), and each summary is its command's own first sentence."""
    probe = ("import sys; from pcpuverify.cli import main; sys.argv = ['pcpu-verify', '--help']\n"
             "try:\n    main()\nexcept SystemExit as e:\n    print('exit', e.code)\n"
             "print(sorted(m for m in ('pcpuverify.check_cli', 'pcpuverify.kernel_cli') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-2:] == ["exit 0", "[]"], out
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines()[:-2] if line.strip()}
    assert listed == {"check", "diff", "explore", "minimize", "prove", "replay"}
    for name, lazy in cli.LAZY_COMMANDS.items():
        command = getattr(importlib.import_module(lazy.module), name)
        assert make_default_short_help(command.help or "", 1000) == lazy.summary, name


def test_replay_runs_without_loading_the_check() -> None:
    """A replay names no ``--variant-module``: loading none must not import the check (0.2-0.5 s a run)."""
    probe = ("import sys; from pcpuverify.cli import main; sys.argv = ['pcpu-verify', 'replay', sys.argv[1]]\n"
             "try:\n    main()\nexcept SystemExit as e:\n    print('exit', e.code)\n"
             "print('loaded' if 'pcpuverify.check' in sys.modules else 'not loaded')")
    out = subprocess.run([sys.executable, "-c", probe, str(HINT_OVERLAP)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[-2:] == ["exit 0", "not loaded"], out[-5:]


# PAGE_SIZE = 8 bits * 4 bytes = 32 bytes.  static 20 + reserved 44 = 64 is page
# aligned (pcpu_align_reserved_region(20, 40, 32) = 44); the reserved chunk starts
# at the static region's last page and hides its 20 bytes as 5 allocated bits
# (begin_fill_bits); the dynamic region is 64 bytes = 2 pages.
FIRST_CHUNK = {
    "format": FORMAT,
    "variant": "v1",
    "geometry": {"block_bits": 8},
    "init": {"kind": "first_chunk", "static_size": 20, "reserved_size": 44, "dyn_size": 64},
    "ops": [
        {"op": "alloc", "bits": 3, "reserved": True},
        {"op": "alloc", "bits": 4},
        {"op": "free", "bit_off": 5, "reserved": True},
    ],
}


def rows(stdout: str, label: str) -> list[str]:
    """The drawn rows of ``label`` (e.g. alloc_map), in order: the text after the label."""
    return [m.group(1) for m in re.finditer(rf"^\s+{label}\s+(\|.*)$", stdout, re.MULTILINE)]


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pcpu-verify: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == "", "bad input must be reported before anything is drawn"


# -- replay: the drawing -------------------------------------------------------------


def test_replay_draws_each_step_with_bitmap_rows_and_violations() -> None:
    result = pcpu_verify("replay", HINT_OVERLAP)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "variant v1, 4 ops" in out
    for index in range(4):
        assert f"step {index}: " in out
    # the initial state and one picture per step, bit 0 on the left, '|' between pages
    assert rows(out, "alloc_map") == [
        "|........|........|",
        "|#.......|........|",
        "|######..|........|",
        "|#.......|........|",
        "|########|###.....|",
    ]
    bound = rows(out, "bound_map")
    assert len(bound) == 5
    assert bound[-1] == "|^^......|...^....|."  # nr_bits + 1 columns: the end bit of the last allocation
    assert "step 3: alloc bits=10 align=1 -> bit_off 1" in out
    assert "10 bits at 6" in out  # the chunk's contig_hint row, still over the allocation
    violated = re.findall(r"^\s+VIOLATED (\S+): dynamic chunk: (.*)$", out, re.MULTILINE)
    names = [name for name, _ in violated]
    assert "chunk-contig-hint-not-above-free-run" in names
    assert ("chunk-contig-hint-not-above-free-run", "contig_hint 10 > longest free run 5") in violated
    assert "chunk-contig-hint-region-free" in names
    # every VIOLATED line comes after the last step header: nothing broke before step 3
    assert out.index("VIOLATED") > out.index("step 3: ")


def test_replay_json_uses_the_kernel_field_names() -> None:
    result = pcpu_verify("replay", "--json", HINT_OVERLAP)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    given = json.loads(HINT_OVERLAP.read_text())
    for key in ("format", "variant", "geometry", "init", "violates"):
        assert data["trace"][key] == given[key], key
    assert [s["index"] for s in data["steps"]] == [0, 1, 2, 3]
    assert [s["op"]["op"] for s in data["steps"]] == ["alloc", "alloc", "free", "alloc"]
    assert [s["bit_off"] for s in data["steps"]] == [0, 1, None, 1]

    initial = data["initial"]["state"]
    assert data["initial"]["violations"] == []
    for state in [initial] + [s["state"] for s in data["steps"]]:
        assert isinstance(state["pcpu_nr_empty_pop_pages"], int)
        chunk = state["chunks"]["dynamic"]
        for key in (
            "alloc_map",
            "bound_map",
            "md_blocks",
            "free_bits",
            "contig_hint",
            "contig_hint_start",
            "first_free_block",
            "nr_populated",
            "nr_empty_pop_pages",
        ):
            assert key in chunk, key
        assert len(chunk["alloc_map"]) == 16 and set(chunk["alloc_map"]) <= {"0", "1"}
        assert len(chunk["bound_map"]) == 17  # nr_bits + 1
        assert len(chunk["md_blocks"]) == 2
        for block in chunk["md_blocks"]:
            assert set(block) >= {"contig_hint", "contig_hint_start", "left_free", "right_free", "first_free"}

    assert initial["chunks"]["dynamic"]["md_blocks"][0] == {
        "contig_hint": 8,
        "contig_hint_start": 0,
        "left_free": 8,
        "right_free": 8,
        "first_free": 0,
    }
    last = data["steps"][-1]
    chunk = last["state"]["chunks"]["dynamic"]
    assert chunk["alloc_map"] == "1111111111100000"
    assert (chunk["free_bits"], chunk["contig_hint"], chunk["contig_hint_start"]) == (5, 10, 6)
    assert chunk["first_free_block"] == 1
    assert chunk["md_blocks"][1]["contig_hint"] == 5 and chunk["md_blocks"][1]["contig_hint_start"] == 3
    broken = {v["invariant"] for v in last["violations"]}
    assert {"chunk-contig-hint-not-above-free-run", "chunk-contig-hint-region-free"} <= broken
    for v in last["violations"]:
        assert set(v) == {"invariant", "chunk", "field", "message"}
    assert all(s["violations"] == [] for s in data["steps"][:-1])


def _committed_traces() -> list[Path]:
    return sorted(TRACES.rglob("*.json"))


@pytest.mark.parametrize("path", _committed_traces(), ids=lambda p: str(p.relative_to(TRACES)))
def test_every_committed_trace_replays_and_reproduces_its_claim(path: Path) -> None:
    for args in (("replay", path), ("replay", "--json", path)):
        result = pcpu_verify(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr == ""
        if args[1] == "--json":
            data = json.loads(result.stdout)
    claim = json.loads(path.read_text()).get("violates")
    if claim is not None:  # exit 0 says it reproduced; the JSON says where
        initially = claim in {v["invariant"] for v in data["initial"]["violations"]}
        where = [-1] * initially + [
            s["index"] for s in data["steps"] if claim in {v["invariant"] for v in s["violations"]}
        ]
        assert where, claim
        if path.parent.name == "found":  # the machine's counterexamples break their claim last
            assert where[0] == len(data["steps"]) - 1


# -- replay: a claim that does not hold ----------------------------------------------


@pytest.mark.parametrize(
    ("variant", "claim"),
    [
        ("v1", "free-bits-count"),  # an invariant the trace does not break
        ("v1-patch09", "bitmap-access-in-bounds"),  # broken by v1's search window, not by PATCH 09 alone
    ],
)
def test_a_violates_claim_that_does_not_reproduce_exits_1(tmp_path: Path, variant: str, claim: str) -> None:
    data = json.loads(HINT_OVERLAP.read_text()) | {"variant": variant, "violates": claim}
    result = pcpu_verify("replay", write_trace(tmp_path, data))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and claim in lines[0] and "does not" in lines[0], result.stderr
    assert "step 3: " in result.stdout  # the replay itself is still shown


# -- bad input: one line, exit 2 ----------------------------------------------------

BAD_INPUTS: dict[str, tuple[dict[str, Any] | str | bytes | None, tuple[str, ...]]] = {
    # name: (file content, None for no file; fragments the error line must hold)
    "missing file": (None, ("cannot read", "No such file")),
    "not UTF-8": (b"\xff\xfe{}", ("UTF-8",)),
    "not JSON": ("{ not json", ("not JSON", "line 1")),
    "not an object": ("[1, 2]", ("must be a JSON object",)),
    "bad format tag": (chunk_trace([]) | {"format": "pcpu-verify-trace/9"}, ("'format' must be", FORMAT)),
    "no format tag": ({"variant": "v1", "geometry": {"block_bits": 8, "nr_pages": 1}}, ("'format'",)),
    "unknown variant": (chunk_trace([]) | {"variant": "v2"}, ("unknown variant 'v2'", "v1-patch09")),
    "block_bits 12": (
        chunk_trace([]) | {"geometry": {"block_bits": 12, "nr_pages": 2}},
        ("block_bits must be a power of two between 4 and 1024", "(got 12)"),
    ),
    "no pages": (chunk_trace([]) | {"geometry": {"block_bits": 8, "nr_pages": 0}}, ("nr_pages",)),
    "populated page outside": (
        chunk_trace([]) | {"geometry": {"block_bits": 8, "nr_pages": 2, "populated": [2]}},
        ("populated pages must lie in 0..1",),
    ),
    "align 3": (chunk_trace([{"op": "alloc", "bits": 2, "align": 3}]), ("ops[0]", "'align'", "(got 3)")),
    "bits 0": (chunk_trace([{"op": "alloc", "bits": 0}]), ("ops[0]", "'bits'", "(got 0)")),
    "unknown op": (chunk_trace([{"op": "resize"}]), ("ops[0]", "'op' must be one of")),
    "unknown op key": (chunk_trace([{"op": "alloc", "bits": 2, "size": 8}]), ("ops[0]", "'size'")),
    "free of a non-allocated offset": (
        chunk_trace([{"op": "alloc", "bits": 2}, {"op": "free", "bit_off": 1}]),
        ("free bit_off=1", "no live allocation starts there"),
    ),
    "depopulate of allocated pages": (
        chunk_trace([{"op": "alloc", "bits": 2}, {"op": "depopulate", "page_start": 0, "page_end": 1}]),
        ("depopulate pages [0, 1)", "allocated"),
    ),
    "pages outside the chunk": (
        chunk_trace([{"op": "populate", "page_start": 1, "page_end": 3}]),
        ("pages [1, 3)",),
    ),
    "reserved op without a reserved chunk": (
        chunk_trace([{"op": "alloc", "bits": 2, "reserved": True}]),
        ("reserved",),
    ),
    "first chunk not page aligned": (
        FIRST_CHUNK | {"init": {"kind": "first_chunk", "static_size": 20, "reserved_size": 40, "dyn_size": 64}, "ops": []},
        ("PAGE_ALIGNED", "pcpu_align_reserved_region"),
    ),
    "free of the hidden static region": (
        FIRST_CHUNK | {"ops": [{"op": "free", "bit_off": 0, "reserved": True}]},
        ("static region",),
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line_and_exit_2(tmp_path: Path, case: str) -> None:
    content, fragments = BAD_INPUTS[case]
    path = tmp_path / "trace.json" if content is None else write_trace(tmp_path, content)
    assert_one_error_line(pcpu_verify("replay", path), *fragments)


# --json must not turn an error into half a JSON document: one case per layer
# (reading the file, validating the trace, replaying it).
@pytest.mark.parametrize("case", ["missing file", "block_bits 12", "free of a non-allocated offset"])
def test_bad_input_with_json_is_one_error_line_and_exit_2(tmp_path: Path, case: str) -> None:
    content, fragments = BAD_INPUTS[case]
    path = tmp_path / "trace.json" if content is None else write_trace(tmp_path, content)
    assert_one_error_line(pcpu_verify("replay", "--json", path), *fragments)


# Inputs that once escaped the one-line rule.
EDGE_INPUTS = {
    "JSON nested too deep": (b"[" * 100_000 + b"]" * 100_000, ("nested too deeply",)),
    "a directory": (None, ("cannot read",)),
    "unknown invariant in violates": (
        json.dumps(chunk_trace([{"op": "alloc", "bits": 2}], violates="no-such-invariant")).encode(),
        ("no-such-invariant",),
    ),
}


@pytest.mark.parametrize("case", list(EDGE_INPUTS))
def test_edge_inputs_are_one_error_line(tmp_path: Path, case: str) -> None:
    content, fragments = EDGE_INPUTS[case]
    if content is None:
        path = tmp_path
    else:
        path = tmp_path / "trace.json"
        path.write_bytes(content)
    assert_one_error_line(pcpu_verify("replay", path), *fragments)


@pytest.mark.parametrize("selection", [
    ("--geometry", "2xblock8", "--op", "alloc"),  # a block label has no suite operations
    ("--geometry", "1x8", "--invariant", "fit-left-is-free"),  # a block contract, and no block label
])
def test_a_selection_that_matches_no_obligation_is_an_error_not_a_pass(selection: tuple[str, ...]) -> None:
    """It once printed "0 obligations" and exited 0: a green run that proved nothing."""
    result = pcpu_verify("prove", "--variant", "fixed", "--no-layout", *selection)
    assert_one_error_line(result, "nothing to prove")


# -- the first chunk ------------------------------------------------------------------


def test_first_chunk_trace_shows_the_reserved_and_the_dynamic_chunk(tmp_path: Path) -> None:
    path = write_trace(tmp_path, FIRST_CHUNK)
    result = pcpu_verify("replay", path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "reserved chunk: 2 pages x 8 bits" in out
    assert "dynamic chunk: 2 pages x 8 bits" in out
    # the 20 static bytes of the reserved chunk's first page are 5 allocated bits
    assert rows(out, "alloc_map")[:2] == ["|#####...|........|", "|........|........|"]
    assert "step 0: alloc reserved bits=3 align=1 -> bit_off 5" in out
    assert "step 1: alloc bits=4 align=1 -> bit_off 0" in out
    assert "step 2: free reserved bit_off=5" in out
    assert "VIOLATED" not in out

    data = json.loads(pcpu_verify("replay", "--json", path).stdout)
    assert data["trace"]["init"] == FIRST_CHUNK["init"]
    initial = data["initial"]["state"]["chunks"]
    assert set(initial) == {"reserved", "dynamic"}
    reserved, dynamic = initial["reserved"], initial["dynamic"]
    assert reserved["alloc_map"] == "1111100000000000"
    assert reserved["bound_map"][0] == "1" and reserved["bound_map"][5] == "1"
    assert reserved["has_reserved"] is True and reserved["immutable"] is True
    assert (reserved["free_bits"], reserved["contig_hint"], reserved["contig_hint_start"]) == (11, 11, 5)
    assert dynamic["alloc_map"] == "0" * 16 and dynamic["free_bits"] == 16
    assert dynamic["nr_populated"] == 2 and dynamic["immutable"] is True
    assert data["initial"]["violations"] == []
    assert [s["bit_off"] for s in data["steps"]] == [5, 0, None]
    after = data["steps"][-1]["state"]["chunks"]
    assert after["reserved"]["alloc_map"] == "1111100000000000"
    assert after["dynamic"]["alloc_map"] == "1111000000000000"


# -- a plug-in variant (--variant-module) with prove, replay and minimize ----------------------------------

# A one-line patch on `fixed`: Fix 2 taken back, so the search window again runs past the bitmap.
PLUGIN = '''
from pcpuverify.check import register_variant
from pcpuverify.model.variants import V1, Fixed
from pcpuverify.symbolic.encode import SymFixed, SymV1


class Unclipped(Fixed):
    variant = "fixed-unclipped"
    pcpu_alloc_area_search = V1.pcpu_alloc_area_search


class SymUnclipped(SymFixed):
    variant = "fixed-unclipped"
    pcpu_alloc_area_search = SymV1.pcpu_alloc_area_search


register_variant("fixed-unclipped", Unclipped, SymUnclipped)
'''
OUT_OF_BOUNDS = TRACES / "found" / "v1__bitmap-access-in-bounds.json"


def plugin_and_trace(tmp_path: Path) -> tuple[Path, Path]:
    """The plug-in file, and the committed out-of-bounds trace on its variant (padded: a depopulate, a populate)."""
    plugin = tmp_path / "unclipped.py"
    plugin.write_text(PLUGIN)
    data = json.loads(OUT_OF_BOUNDS.read_text())
    data["variant"] = "fixed-unclipped"
    data["ops"] = [{"op": "depopulate", "page_start": 0, "page_end": 1},
                   {"op": "populate", "page_start": 0, "page_end": 1}, *data["ops"]]
    return plugin, write_trace(tmp_path, data)


@pytest.mark.slow
def test_replay_and_minimize_a_plugin_variant(tmp_path: Path) -> None:
    plugin, trace = plugin_and_trace(tmp_path)
    # without the plug-in the variant is unknown: one line, exit 2
    assert_one_error_line(pcpu_verify("replay", trace), "unknown variant 'fixed-unclipped'")
    assert_one_error_line(pcpu_verify("replay", "--variant-module", tmp_path / "nowhere.py", trace),
                          "--variant-module", "no such file")
    replayed = pcpu_verify("replay", "--variant-module", plugin, "--json", trace)
    assert replayed.returncode == 0, replayed.stderr
    steps = json.loads(replayed.stdout)["steps"]
    broken = [s["index"] for s in steps if any(v["invariant"] == "bitmap-access-in-bounds" for v in s["violations"])]
    assert broken and broken[0] == len(steps) - 1  # the patch breaks it where v1 does, after the padding
    # on `fixed` itself the same steps break nothing: it is the patch
    fixed = json.loads(trace.read_text())
    fixed["variant"] = "fixed"
    assert pcpu_verify("replay", write_trace(tmp_path, fixed, "fixed.json")).returncode == 1

    out = tmp_path / "min.json"
    minimized = pcpu_verify("minimize", "--variant-module", plugin, "-o", out, trace)
    assert minimized.returncode == 0, minimized.stderr
    smaller = json.loads(out.read_text())
    assert smaller["variant"] == "fixed-unclipped" and smaller["violates"] == "bitmap-access-in-bounds"
    assert len(smaller["ops"]) < len(json.loads(trace.read_text())["ops"])


@pytest.mark.slow
def test_prove_a_release_variant_with_the_default_layout_flag() -> None:
    """--layout is the default; a release variant has no symbolic first-chunk setup, so it gets suite rows only
    (prove used to end in an error line after its work, its rows lost)."""
    result = pcpu_verify("prove", "--variant", "mainline-fixed", "--geometry", "1x4", "--invariant", "block-nr-bits",
                         "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)["results"]
    assert {(r["op"], r["result"]) for r in rows} == {
        (op, "PROVED") for op in ("init", "alloc", "free", "populate", "depopulate")}


@pytest.mark.slow
def test_replay_pytest_of_a_plugin_variant_loads_the_plugin(tmp_path: Path) -> None:
    """The test `replay --variant-module F --pytest OUT` writes loads F itself: run elsewhere, it passes, and it
    breaks on the plug-in's variant where the replay did (with F not loaded it would not know the variant)."""
    plugin, trace = plugin_and_trace(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = elsewhere / "test_regression.py"
    written = pcpu_verify("replay", "--variant-module", plugin, "--pytest", out, trace)
    assert written.returncode == 0, written.stderr
    assert str(plugin.resolve()) in out.read_text()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=elsewhere, check=False)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout[-3000:]


@pytest.mark.slow
def test_prove_a_plugin_variant(tmp_path: Path) -> None:
    plugin, _ = plugin_and_trace(tmp_path)
    # --variant checks its names after the plug-in has registered its own
    assert "'fixed-unclipped' is not one of" in pcpu_verify("prove", "--variant", "fixed-unclipped").stderr
    result = pcpu_verify("prove", "--variant-module", plugin, "--variant", "fixed-unclipped", "--geometry", "1x8",
                         "--invariant", "bitmap-access-in-bounds", "--invariant", "chunk-contig-hint-region-free",
                         "--no-layout", "--no-witnesses", "--json", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    found = {(r["invariant"], r["op"]): r["result"] for r in json.loads(result.stdout)["results"]}
    assert {r for (inv, _), r in found.items() if inv == "chunk-contig-hint-region-free"} == {"PROVED"}
    assert found[("bitmap-access-in-bounds", "alloc")] == "VIOLATED"  # what the one line takes back
    assert {r for (inv, op), r in found.items() if inv == "bitmap-access-in-bounds" and op != "alloc"} == {"PROVED"}
