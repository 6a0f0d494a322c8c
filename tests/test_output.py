"""Issue 13, "Output a newcomer can act on": what `replay` and `prove` print, as a subprocess prints it."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from installed import pcpu_verify_exe

TESTS = Path(__file__).parent
HINT_OVERLAP = TESTS / "traces" / "v1_hint_overlap.json"
CLAIM = "chunk-contig-hint-not-above-free-run"


def pcpu_verify(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = pcpu_verify_exe()
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd, check=False)


# -- replay -------------------------------------------------------------------------------------------------


def test_replay_explains_its_symbols_and_ends_with_the_result() -> None:
    result = pcpu_verify("replay", HINT_OVERLAP)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    legend = "\n".join(lines[1:5])
    assert lines[1].startswith("legend")
    for symbol in "#.^=~P-|":
        assert f"{symbol} " in legend or f"'{symbol}'" in legend, symbol
    assert all(len(line) <= 80 for line in lines[1:5])  # a terminal of 80 columns does not wrap it
    assert lines[-1] == f"result: claimed violation of {CLAIM} reproduced at step 3"


def test_replay_of_a_claim_that_fails_ends_saying_so(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(json.loads(HINT_OVERLAP.read_text()) | {"violates": "free-bits-count"}))
    result = pcpu_verify("replay", trace)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "result: claimed violation of free-bits-count not reproduced"


def test_replay_without_a_claim_names_the_first_broken_invariant(tmp_path: Path) -> None:
    data = json.loads(HINT_OVERLAP.read_text())
    del data["violates"]
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(data))
    last = pcpu_verify("replay", trace).stdout.splitlines()[-1]
    assert last.startswith("result: no claimed violation; the first broken invariant is ") and "at step 3" in last


def test_replay_writing_files_says_where_and_skips_the_drawing(tmp_path: Path) -> None:
    page, test = tmp_path / "r.html", tmp_path / "test_r.py"
    result = pcpu_verify("replay", "--html", page, "--pytest", test, HINT_OVERLAP)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote {page}: the replay, 4 steps drawn, as a self-contained HTML page",
        f"wrote {test}: a regression test (run it with `pytest {test}`)",
        f"result: claimed violation of {CLAIM} reproduced at step 3",
    ]
    drawn = pcpu_verify("replay", "--html", page, "--draw", HINT_OVERLAP).stdout
    assert "step 3: " in drawn and drawn.startswith(f"wrote {page}")


def test_replay_html_page_has_a_title(tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    assert pcpu_verify("replay", "--html", page, HINT_OVERLAP).returncode == 0
    html = page.read_text()
    assert f"<title>pcpu-verify replay: {HINT_OVERLAP} (variant v1, 4 ops)</title>" in html
    assert html.index("<title>") < html.index("</head>")
    assert "legend" in html and "reproduced at step 3" in html


# -- prove in CI ------------------------------------------------------------------------------------------

SMALL_PROVE = ("prove", "--variant", "v1", "--geometry", "1x4", "--depth", "1", "--invariant", "free-bits-count",
               "--invariant", "block-hints-match-scan", "--no-layout")


@pytest.mark.slow
def test_prove_in_a_log_prints_a_line_per_finished_group() -> None:
    """stderr is a pipe here, as in CI: a line per group, with verdict counts, how far, and the time."""
    result = pcpu_verify(*SMALL_PROVE, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"]  # stdout stays one JSON document
    lines = result.stderr.splitlines()
    assert [line.split(":")[2].strip() for line in lines] == [
        "init (every invariant)", "init-first-chunk (every invariant)", "block-hints-match-scan", "free-bits-count"]
    for line in lines:
        assert re.fullmatch(r"prove: v1 1x4: [^:]+: (\d+ [A-Z-]+(, )?)+ \[\d+ of 12 in v1 1x4; \d+m\d\ds elapsed\]",
                            line), line
    assert "[12 of 12 in v1 1x4;" in lines[-1]


# -- prove's summary ---------------------------------------------------------------------------------------

ROOT = TESTS.parent
FINDING = ("prove", "--variant", "v1", "--geometry", "1x4", "--depth", "1", "--invariant", "static-overlap-hidden",
           "--invariant", "nr-empty-pop-pages-matches-bitmap", "--no-layout")


@pytest.mark.slow
def test_prove_prints_counts_findings_and_what_to_do_next(tmp_path: Path) -> None:
    """Run inside the project, as a newcomer would: the counts, each finding with its replay command, next steps."""
    traces = tmp_path / "found"
    result = pcpu_verify(*FINDING, "--traces", traces, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    header = out.splitlines()[0].split()
    assert header == ["invariant", "init", "1st", "alloc", "free", "pop", "depop"]
    assert re.search(r"^nr-empty-pop-pages-matches-bitmap +1P +1P +1V +1P +1P +1P *$", out, re.MULTILINE), out
    assert "┃" not in out and "│" not in out  # not the table of every row
    finding = f"v1 1x4 nr-empty-pop-pages-matches-bitmap / alloc: a trace of 1 op; pcpu-verify replay {traces}/"
    assert finding in out
    command = out[out.index(finding):].split("pcpu-verify ", 1)[1].splitlines()[0].split()
    replayed = pcpu_verify(*command, cwd=ROOT)
    assert replayed.returncode == 0 and "reproduced at step 0" in replayed.stdout.splitlines()[-1]
    steps = out[out.index("\nnext:\n"):]
    assert "docs/gallery.md" in steps and "pcpu-verify replay TRACE" in steps and "--rows" in steps
    assert "v1: 0 of 0 rows as baseline.json expects them (1x4: not in the baseline)" in steps


@pytest.mark.slow
def test_prove_rows_is_the_full_table() -> None:
    result = pcpu_verify(*FINDING, "--rows")
    assert result.returncode == 0, result.stderr
    assert "detail" in result.stdout.splitlines()[1]
    assert result.stdout.count("│ v1      │") == 7  # one row per obligation
    assert result.stdout.splitlines()[-1].startswith("7 obligations: 5 PROVED, 2 VIOLATED")


def test_details_of_a_first_chunk_violation_read_as_a_sentence() -> None:
    """Was ``0 ops (populated None): ; static_size=1``."""
    from pcpuverify.proofs.results import Result, Verdict
    from pcpuverify.report import Console, results_table

    trace = {"format": "pcpu-verify-trace/1", "variant": "v1", "geometry": {"block_bits": 4},
             "init": {"kind": "first_chunk", "static_size": 1, "reserved_size": 0, "dyn_size": 16}, "ops": [],
             "violates": "static-overlap-hidden"}
    row = Result("v1", "1x4", "static-overlap-hidden", "init-first-chunk", Verdict.VIOLATED, 0.5,
                 detail="static_size=1 reserved_size=0", trace=trace)
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(results_table([row]))
    text = console.export_text()
    assert "0 ops from the first chunk static_size=1 reserved_size=0 dyn_size=16: broken as created" in text


# -- check: fewer stateful examples is less coverage, not a change of verdict -----------------------------------


@pytest.mark.slow
def test_fewer_stateful_examples_is_coverage_not_a_regression(tmp_path: Path) -> None:
    from test_faults import write_check_config

    write_check_config(tmp_path, **{"stateful-examples": 20})
    config = ("check", "--config", tmp_path / "check.toml")
    recorded = pcpu_verify(*config, "--update-baseline", cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    result = pcpu_verify(*config, "--stateful-examples", "5", "--json", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    rows = [r for r in json.loads(result.stdout)["results"] if r["kind"] == "stateful"]
    assert rows and all(r["outcome"] == "ok" and r["expected"] is not None for r in rows)
    assert all("coverage: 5 examples, the baseline's 20" in r["detail"] for r in rows)


# -- the HTML page in a real browser -------------------------------------------------------------------------

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: apt-get install chromium (the README's set-up command does)")
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_replay_html_page_renders_its_steps_in_a_browser(tmp_path: Path) -> None:
    """Headless Chromium loads the page: its title, every step and the result are in the rendered DOM,
    and its screenshot is not the blank page's."""
    page, blank = tmp_path / "r.html", tmp_path / "blank.html"
    assert pcpu_verify("replay", "--html", page, HINT_OVERLAP).returncode == 0
    blank.write_text("<!doctype html><title>blank</title>", encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert "<title>pcpu-verify replay:" in dom
    assert all(f">step {i}</span>" in dom for i in range(4)), dom[:2000]
    assert f"result: claimed violation of {CLAIM} reproduced at step 3" in dom
    shots = {}
    for name, url in (("page", page.as_uri()), ("blank", blank.as_uri())):
        shot = tmp_path / f"{name}.png"
        chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1400", url)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot of the {name} page"
        shots[name] = len(shot.read_bytes())
    assert shots["page"] > 3 * shots["blank"], shots  # drawn text and bitmaps, not an empty page
