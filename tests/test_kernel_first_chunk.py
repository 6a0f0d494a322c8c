"""The first chunk on the C (4.14 on): ``pcpu_alloc_first_chunk`` builds it, the invariants hold it, as a user runs it.

Debian's 6.12 is what CI has (``python tests/kernels/debian.py``); 4.14.5
(restored from its SOURCE) is used where it is present, for the finding it
has: the populated bitmap of its first chunk is allocated in bytes, not in
longs, which AddressSanitizer reports at the setup.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pcpuverify.counterexamples.kernel_first_chunk import caller_layouts, first_chunk_c
from pcpuverify.counterexamples.kernel_search import state_violations, step_violations
from pcpuverify.kernel.first_chunk import c_first_chunk
from pcpuverify.kernel.harness import open_chunk
from pcpuverify.kernel.source import KernelSource, load_source
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, FirstChunkInit, Free, Populate
from pcpuverify.model.reference import OpError

KERNELS = Path(__file__).with_name("kernels")
FIRST = Geometry(8, 1, (0,))  # a first-chunk trace's geometry: 32-byte pages, the layout decides the rest


def kernel(name: str) -> KernelSource:
    folder = KERNELS / name
    if name.startswith("debian-"):
        assert (folder / "mm" / "percpu.c").is_file(), f"{folder} is absent: run python tests/kernels/debian.py"
    elif not (folder / "mm" / "percpu.c").is_file():
        pytest.skip(f"{folder}/mm/percpu.c is absent: restore it as {folder}/SOURCE says")
    return load_source(folder)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pcpuverify.cli import main; sys.argv[0] = 'pcpu-verify'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600,
                          check=False)


def test_the_hidden_runs_follow_the_layout() -> None:
    """static 20 hides 5 bits of the reserved chunk; reserved 44 ends on a page; dyn 40 hides 24 bytes at its end."""
    first = c_first_chunk(FirstChunkInit(20, 44, 40), 32)
    assert first.unit_pages == 4
    assert first.hidden == {"reserved": {0: 5}, "dynamic": {10: 6}}
    # an odd static region ends aligned to PCPU_MIN_ALLOC_SIZE, taken from the dynamic region
    assert c_first_chunk(FirstChunkInit(1, 0, 63), 32).hidden == {"dynamic": {0: 1}}


def test_the_c_hides_what_the_layout_says_and_serves_both_chunks() -> None:
    source = kernel("debian-6.12")
    chunk = open_chunk(source, FIRST, FirstChunkInit(20, 44, 40))
    try:
        dump = chunk.dump()
        assert set(dump["chunks"]) == {"dynamic", "reserved"}
        assert dump["chunks"]["reserved"]["alloc_map"] == "1111100000000000"
        assert dump["chunks"]["dynamic"]["alloc_map"] == "0000000000111111"
        assert state_violations(source.layout, dump, FIRST) == []
        # the reserved free reaches the next block's free bits and reaches chunk_md clipped to its block
        # (docs/gallery.md 17): [5, 16) is free, chunk_md knows [5, 8) and [8, 16) apart; within a page, so only
        # the proofs' lemmas break (its contig hint is no whole run, nor the longest)
        clipped = {"chunk-md-scan-hint-maximal", "chunk-md-contig-hint-maximal", "chunk-md-contig-hint-longest"}
        for op, expected, broken in ((Alloc(3, 1, False, True), 5, set()), (Alloc(2, 1), 0, set()),
                                     (Free(5, True), None, clipped)):
            before = chunk.dump()
            step = chunk.apply(op)
            assert step.bit_off == expected
            found = step_violations(source.layout, before, step, chunk.dump(), FIRST)
            assert {v.invariant for v in found} == broken and all(v.chunk == "reserved" for v in found)
        with pytest.raises(OpError, match="hidden by pcpu_alloc_first_chunk"):
            chunk.apply(Free(0, True))
        with pytest.raises(OpError, match="immutable"):
            chunk.apply(Populate(0, 1))
    finally:
        chunk.close()


def test_every_caller_layout_of_6_12_holds() -> None:
    run = first_chunk_c(kernel("debian-6.12"), 8)
    assert run.layouts == sum(1 for _ in caller_layouts(32)) > 2000
    assert run.found == {}


@pytest.mark.slow
def test_cli_explore_first_chunk_on_6_12_and_refused_for_the_posting() -> None:
    proc = cli("explore", "--source", str(KERNELS / "debian-6.12"), "--depth", "0", "--examples", "1",
               "--first-chunk")
    assert proc.returncode == 0, proc.stderr
    assert "first chunk (init-first-chunk): 2173 layouts its callers give, at 8 bits a page\n    nothing broken" \
        in proc.stdout
    seed = KERNELS / "seed-v1"
    if (seed / "mm" / "percpu.c").is_file():
        refused = cli("explore", "--source", str(seed), "--depth", "0", "--examples", "1", "--first-chunk")
        assert refused.returncode == 2 and "2017 posting" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_explore_reports_the_first_chunk_and_4_14s_overflow_replays(tmp_path: Path) -> None:
    source = kernel("linux-4.14.5")
    proc = cli("explore", "--source", str(source.percpu_c), "--depth", "0", "--examples", "1", "--first-chunk",
               "--traces", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "first chunk (init-first-chunk): 2173 layouts" in proc.stdout
    assert "BROKEN sanitizer by first chunk 1+0+63 bytes" in proc.stdout
    assert "heap-buffer-overflow" in proc.stdout and "pcpu_alloc_first_chunk mm/percpu.c:1119" in proc.stdout
    trace = tmp_path / "4.14__8__init-first-chunk__sanitizer.json"
    assert json.loads(trace.read_text())["init"]["kind"] == "first_chunk"
    again = cli("replay", str(trace), "--source", str(source.percpu_c))
    assert again.returncode == 0 and "reproduced at step -1 on the C" in again.stdout, again.stdout
    fixed = cli("replay", str(trace), "--source", str(KERNELS / "debian-6.12"))
    assert fixed.returncode == 1 and "not reproduced on the C" in fixed.stdout


def test_cli_a_first_chunk_trace_with_reserved_ops_replays_on_6_12(tmp_path: Path) -> None:
    """An explore trace carries its init; a claim that holds nowhere is exit 1; a bad layout is exit 2."""
    trace = tmp_path / "t.json"
    base = {"format": "pcpu-verify-c-trace/1", "geometry": {"block_bits": 8, "nr_pages": 1, "populated": [0]},
            "ops": [{"op": "alloc", "bits": 3, "align": 1, "pop_only": False, "reserved": True},
                    {"op": "free", "bit_off": 5, "reserved": True}],
            "violates": "alloc-map-is-allocations", "message": ""}
    trace.write_text(json.dumps({**base, "init": {"kind": "first_chunk", "static_size": 20, "reserved_size": 44,
                                                   "dyn_size": 40}}))
    proc = cli("replay", str(trace), "--source", str(KERNELS / "debian-6.12"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "first chunk 20+44+40 bytes" in proc.stdout and "not reproduced on the C" in proc.stdout
    trace.write_text(json.dumps({**base, "init": {"kind": "first_chunk", "static_size": 20, "reserved_size": 42,
                                                   "dyn_size": 40}}))
    bad = cli("replay", str(trace), "--source", str(KERNELS / "debian-6.12"))
    assert bad.returncode == 2 and "IS_ALIGNED(ai->reserved_size" in bad.stderr, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_populated_bitmap_patch_removes_4_14s_overflow(tmp_path: Path) -> None:
    """docs/patches/v4.14-first-chunk-populated.patch (longs, not bytes) on 4.14.5: every caller layout holds."""
    source = kernel("linux-4.14.5")
    assert "sanitizer" in first_chunk_c(source, 8).found
    shutil.copytree(source.percpu_c.parent, tmp_path / "mm")
    patch = Path(__file__).resolve().parent.parent / "docs" / "patches" / "v4.14-first-chunk-populated.patch"
    proc = subprocess.run(["patch", "-p1", "--forward", "-d", str(tmp_path), "-i", str(patch)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = first_chunk_c(load_source(tmp_path), 8)
    assert run.layouts == 2173 and run.found == {}
