"""A kernel's mm/percpu.c as a subject of ``pcpu-verify check``: gating a patch to the C, as CI runs it.

A copy of Debian's 6.12 (``python tests/kernels/debian.py``; CI has it) is
the C subject of a small config (tests/test_check.py's: v1-patch09 on one
block of 4 bits).  Its rows are recorded in the baseline, held to it on the
next run (from the cache), and a patch to the copy that breaks the
allocator is a new violation: exit 1, the trace minimised on the C and
written where ``replay --source`` replays it on the patched C.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_check import check, pcpu_verify, write_config

KERNEL = Path(__file__).with_name("kernels") / "debian-6.12"
# a patch that frees one bit too few: what a free of one bit leaves set in alloc_map
FREE_LINE = ("bitmap_clear(chunk->alloc_map, bit_off, bits);", "bitmap_clear(chunk->alloc_map, bit_off, bits - 1);")


def c_rows(summary: dict) -> list[dict]:
    return [r for r in summary["results"] if r["kind"] == "c"]


@pytest.mark.slow
def test_a_c_source_is_a_matrix_item_and_a_breaking_patch_is_caught(tmp_path: Path) -> None:
    assert (KERNEL / "mm" / "percpu.c").is_file(), f"{KERNEL} is absent: run python tests/kernels/debian.py"
    tree = tmp_path / "linux"
    shutil.copytree(KERNEL / "mm", tree / "mm")
    write_config(tmp_path, sources=["linux"])

    recorded, summary = check(tmp_path, "--update-baseline")
    assert recorded.returncode == 0, recorded.stderr
    rows = c_rows(summary)
    assert rows and {r["variant"] for r in rows} == {"c:linux"} and {r["geometry"] for r in rows} == {"1x4"}
    assert {r["op"] for r in rows} == {"search", "init-first-chunk"}
    assert {r["result"] for r in rows} <= {"VIOLATED", "HOLDS-TO-DEPTH"}
    names = {r["invariant"] for r in rows}
    assert {"alloc-map-is-allocations", "scan-hint-region-free", "sanitizer", "warning"} <= names
    baseline = json.loads((tmp_path / "baseline.json").read_text())
    assert set(baseline["sources"]) == {"c:linux"}
    assert baseline["sources"]["c:linux"]["1x4"]["alloc-map-is-allocations"]["search"] == "HOLDS-TO-DEPTH"

    again, summary = check(tmp_path)
    assert again.returncode == 0, again.stderr
    assert summary["items"]["c:linux 1x4"] == "cached"
    assert all(r["outcome"] == "ok" for r in c_rows(summary))

    text = (tree / "mm" / "percpu.c").read_text()
    assert FREE_LINE[0] in text
    (tree / "mm" / "percpu.c").write_text(text.replace(*FREE_LINE, 1))
    gated, summary = check(tmp_path)
    assert gated.returncode == 1, gated.stderr
    assert summary["items"]["c:linux 1x4"] == "ran"  # the source's hash is in the key
    new = {r["invariant"]: r for r in c_rows(summary) if r["outcome"] == "new violation"}
    assert "alloc-map-is-allocations" in new, [(r["invariant"], r["outcome"]) for r in c_rows(summary)]
    minimised = new["alloc-map-is-allocations"]["minimised"]
    assert minimised["format"] == "pcpu-verify-c-trace/1" and len(minimised["ops"]) <= 2
    written = next((tmp_path / "cache" / "c-traces").glob("*alloc-map-is-allocations.json"))
    replayed = pcpu_verify("replay", written, "--source", tree, cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "claimed violation of alloc-map-is-allocations reproduced" in replayed.stdout
    unpatched = pcpu_verify("replay", written, "--source", KERNEL, cwd=tmp_path)
    assert unpatched.returncode == 1, unpatched.stdout + unpatched.stderr


def test_a_bad_source_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_config(tmp_path, sources=["nowhere"])
    proc, _ = check(tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("pcpu-verify: error:"), proc.stderr
    assert "nowhere" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    write_config(tmp_path, sources="linux")
    proc, _ = check(tmp_path)
    assert proc.returncode == 2 and "'sources' must be a list" in proc.stderr, proc.stderr
    missing = tmp_path / "empty"
    (missing / "mm").mkdir(parents=True)
    write_config(tmp_path)
    proc, _ = check(tmp_path, "--source", missing)
    assert proc.returncode == 2 and "no mm/percpu.c" in proc.stderr, proc.stderr
