"""The C build of the kernels' own mm/percpu.c (pcpuverify/kernel): it builds, it runs, it is held to the model.

The sources are tests/kernels/<name>/mm/{percpu.c,percpu-internal.h}.
Two are required and fail the tests when absent: ``debian-6.1`` and
``debian-6.12``, which ``python tests/kernels/debian.py`` writes from
Debian's kernel source packages (CI runs it).  The others (the seed's
posting, the mirrors' releases) came in through a tool whose terms keep
them out of commits: each folder's SOURCE says where they come from, and a
test needing one that is absent is skipped with the path to restore.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pcpuverify.counterexamples.kernel_diff import diff
from pcpuverify.counterexamples.kernel_machine import hypothesis_c
from pcpuverify.counterexamples.kernel_search import CSearch, CTrace
from pcpuverify.counterexamples.kernel_shrink import reproduce, shrink
from pcpuverify.kernel.build import build
from pcpuverify.kernel.convert import to_model
from pcpuverify.kernel.harness import (
    DriverGone,
    KernelChunk,
    KernelInitError,
    parse_reply,
)
from pcpuverify.kernel.source import KernelSource, load_source
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, FirstChunkInit, Free, Populate
from pcpuverify.model.reference import Reference
from pcpuverify.model.state import dump_chunk

KERNELS = Path(__file__).with_name("kernels")
LAYOUTS = {
    "seed-v1": "seed",
    "seed-v1-patch09": "seed",
    "linux-4.14.5": "4.14",
    "linux-4.19.72": "4.14",
    "linux-5.4.286": "5.2",
    "linux-5.10.89": "5.9",
    "linux-6.1.158": "5.14",
    "linux-6.6.87": "5.14",
    "linux-6.19.10": "5.14",
    "linux-7.1.3": "5.14",
    "debian-6.1": "5.14",
    "debian-6.12": "5.14",
}
REQUIRED = ("debian-6.1", "debian-6.12")  # from a package registry: every clone can have them


def kernel(name: str) -> KernelSource:
    folder = KERNELS / name
    if name in REQUIRED:
        assert (folder / "mm" / "percpu.c").is_file(), f"{folder} is absent: run python tests/kernels/debian.py"
    elif not (folder / "mm" / "percpu.c").is_file():
        pytest.skip(f"{folder}/mm/percpu.c is absent: restore it as {folder}/SOURCE says")
    return load_source(folder)


@pytest.mark.parametrize("name", LAYOUTS)
def test_each_release_builds_and_runs(name: str) -> None:
    """Every vendored release: its layout is detected, the core compiles unmodified, a chunk allocates."""
    source = kernel(name)
    assert source.layout == LAYOUTS[name]
    chunk = KernelChunk(build(source, 8, 2), Geometry.parse("2x8"))
    try:
        assert chunk.apply(Alloc(3)).bit_off == 0
        assert chunk.apply(Alloc(4, 4)).bit_off == 4
        state = chunk.dump()["chunks"]["dynamic"]  # type: ignore[index]
        assert state["alloc_map"] == "1110111100000000"
        assert state["allocations"] == {"0": 3, "4": 4}
    finally:
        chunk.close()


@pytest.mark.parametrize("name", LAYOUTS)
def test_core_makes_no_raw_word_access_to_the_maps(name: str) -> None:
    """Narrow words are sound only if the core reaches the maps through the bitmap API but for pcpu_index_alloc_map."""
    source = kernel(name)
    core = "".join(text for _, text in [source.core(), *source.extra_functions()])
    assert re.findall(r"BITS_PER_LONG", core) == ["BITS_PER_LONG"]
    assert "index * PCPU_BITMAP_BLOCK_" in core.split("BITS_PER_LONG")[0][-80:]
    assert not re.search(r"(alloc_map|bound_map|populated)\s*\[", core.replace("alloc_map[0]", "").replace(
        "bound_map[0]", "").replace("populated[]", ""))


@pytest.mark.slow
def test_builds_are_cached_by_the_sources_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same source and geometry reuse one executable; another geometry or another text builds anew."""
    monkeypatch.setenv("PCPU_VERIFY_BUILD_CACHE", str(tmp_path / "cache"))
    source = kernel("debian-6.1")
    first = build(source, 8, 2)
    mtime = first.executable.stat().st_mtime_ns
    assert build(source, 8, 2).executable == first.executable
    assert first.executable.stat().st_mtime_ns == mtime
    assert build(source, 16, 2).executable != first.executable
    edited = KernelSource(source.percpu_c, source.percpu_c_text + "\n", source.internal_h_text)
    assert build(edited, 8, 2).executable != first.executable
    assert first.executable.is_relative_to(tmp_path / "cache")


def test_a_reply_carries_the_steps_warnings() -> None:
    """WARN_ON()s reach the harness through the reply (the shim records them: pcpu_shim_warn)."""
    # pcpu_nr_empty_pop_pages, nr_pages, slot, the three maps, the seed's chunk fields, one block
    state = "0 1 3 0000 00000 1 " + "4 4 0 0 1 0 0 0 " + "4 0 4 4 0"
    reply = parse_reply("seed", f"-1|mm/percpu.c:10 cond;mm/percpu.c:20 other|{state}")
    assert reply.ret == -1 and reply.warnings == ["mm/percpu.c:10 cond", "mm/percpu.c:20 other"]
    assert reply.chunk["md_blocks"] == [{"contig_hint": 4, "contig_hint_start": 0, "left_free": 4,
                                         "right_free": 4, "first_free": 0}]


def test_a_first_chunk_needs_its_units_pages() -> None:
    """A first chunk of 8 + 32 bytes at 32-byte pages is a 2-page unit: a 1-page build is refused in one line."""
    source = kernel("debian-6.12")
    with pytest.raises(KernelInitError, match="needs a build of 2 unit pages, not 1"):
        KernelChunk(build(source, 8, 1), Geometry.parse("1x8"), FirstChunkInit(8, 0, 32))


def test_the_postings_first_chunk_is_refused_in_one_line() -> None:
    source = kernel("seed-v1")
    with pytest.raises(KernelInitError, match="2017 posting hides its static region in pcpu_setup_first_chunk"):
        KernelChunk(build(source, 8, 2), Geometry.parse("1x8"), FirstChunkInit(8, 0, 32))


def test_seed_dump_converts_to_the_models_chunk_unchanged() -> None:
    """For the seed layout, the dump read back as a PcpuChunk dumps to the same fields."""
    source = kernel("seed-v1")
    g = Geometry.parse("2x8")
    chunk = KernelChunk(build(source, 8, 2), g)
    try:
        chunk.apply(Alloc(5, 2))
        dump = chunk.dump()
    finally:
        chunk.close()
    _, model_chunk = to_model(dump, g)
    assert dump_chunk(model_chunk) == dump["chunks"]["dynamic"]  # type: ignore[index]


def test_a_sanitizer_report_is_a_finding_of_its_step() -> None:
    """v1's unclipped search window (PATCH 10) reads past alloc_map: ASan ends the driver at that step, as the model logs it."""
    source = kernel("seed-v1")
    g = Geometry(8, 2, (1,))  # page 0 unpopulated: PATCH 09's pcpu_is_populated sends the search past the map
    chunk = KernelChunk(build(source, 8, 2), g)
    with pytest.raises(DriverGone):
        chunk.apply(Alloc(1, 1, pop_only=True))
    assert [(f.step, f.kind) for f in chunk.findings] == [(0, "sanitizer")]
    assert "heap-buffer-overflow" in chunk.findings[0].summary
    assert Reference("v1", g, ChunkInit()).apply(Alloc(1, 1, pop_only=True)).accesses


@pytest.mark.parametrize("pages", [2, 3])
@pytest.mark.parametrize("name,variant", [("seed-v1", "v1"), ("seed-v1-patch09", "v1-patch09")])
@pytest.mark.slow
def test_seed_equals_the_model(name: str, variant: str, pages: int) -> None:
    """The posting's C and its port agree on every return value and every field, after every step (10,000 traces)."""
    report = diff(kernel(name), variant, Geometry.parse(f"{pages}x8"), traces=10_000, length=8, seed=pages)
    assert report.first is None, report.to_json()
    assert report.identical == report.traces == 10_000


def test_diff_sees_a_difference() -> None:
    """The comparison is not vacuous: PATCH 09 alone against the v1 model diverges."""
    report = diff(kernel("seed-v1-patch09"), "v1", Geometry.parse("2x8"), traces=300, length=12, seed=0)
    assert report.first is not None and report.identical < report.traces


@pytest.mark.slow
def test_the_hypothesis_machine_runs_on_the_c() -> None:
    """On the posting's v1, the stateful machine meets its known breaks: the ASan report and the empty-page count."""
    g = Geometry.parse("2x8")
    found = hypothesis_c(build(kernel("seed-v1"), 8, 2), g, 30, 0, CSearch("seed", g, ())).found
    assert {"sanitizer", "nr-empty-pop-pages-matches-bitmap"} <= set(found)


STALE_HINT = (Alloc(2, 1, True), Alloc(2, 2), Free(2), Alloc(9, 2))  # starts before the hint, runs into it


def test_shrink_keeps_the_finding_with_fewer_ops_on_the_c() -> None:
    """4.14 still refreshes the chunk hint only for an area *starting* inside it (the model's Fix 3)."""
    source = kernel("linux-4.14.5")
    g = Geometry.parse("2x8")
    driver = build(source, 8, 2)
    name = "chunk-hint-accurate-in-one-block"
    padded = (STALE_HINT[0], Populate(0, 2), STALE_HINT[1], Populate(0, 1), Free(2), Populate(1, 2), STALE_HINT[3])
    assert reproduce(driver, CTrace(g, padded, name, "")) is not None
    shrunk = shrink(driver, CTrace(g, padded, name, ""))
    assert shrunk.ops == STALE_HINT and "contig_bits 12, but the longest free run [11, 16)" in shrunk.message
    assert reproduce(driver, CTrace(g, STALE_HINT[:3], name, "")) is None


# -- the command line, as a user runs it ------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pcpuverify.cli import main; sys.argv[0] = 'pcpu-verify'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.mark.slow
def test_cli_explore_finds_v1s_findings_on_the_c() -> None:
    source = kernel("seed-v1")
    proc = cli("explore", "--source", str(source.percpu_c), "--geometry", "2x8", "--depth", "2", "--examples", "2")
    assert proc.returncode == 0, proc.stderr
    assert "layout seed" in proc.stdout
    assert "BROKEN nr-empty-pop-pages-matches-bitmap after 1 ops" in proc.stdout
    assert "BROKEN sanitizer after 1 ops" in proc.stdout


@pytest.mark.slow
def test_cli_explore_writes_shrunk_traces(tmp_path: Path) -> None:
    source = kernel("linux-4.14.5")
    proc = cli("explore", "--source", str(source.percpu_c), "--depth", "1", "--examples", "30",
               "--traces", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    written = json.loads((tmp_path / "4.14__2x8__chunk-hint-accurate-in-one-block.json").read_text())
    assert written["format"] == "pcpu-verify-c-trace/1" and written["sha256"] == source.sha256
    trace = CTrace.from_json(written)
    assert len(trace.ops) == 4
    assert reproduce(build(source, 8, 2), trace) is not None  # the file replays on the C


# What the model variant mainline breaks (tests/release_traces/, tests/test_release_variants.py's BROKEN)
MAINLINE_FINDINGS = frozenset({"chunk-hint-accurate-in-one-block", "chunk-hint-off-by-at-most-a-page",
                               "block-left-right-free-exact", "scan-hint-before-contig-hint",
                               # two of the three the 1x8 proofs added, broken on a block (gallery 14 to 16)
                               "scan-hint-clear-of-contig-hint", "scan-hint-maximal",
                               # the lemmas asked of chunk_md, broken through finding 12 and gallery 17
                               "chunk-md-scan-hint-clear-of-contig-hint", "chunk-md-scan-hint-maximal",
                               "chunk-md-contig-hint-longest", "chunk-md-contig-hint-maximal",
                               "chunk-hint-covers-every-block"})


@pytest.mark.slow
def test_cli_explore_holds_a_post_5_2_release_to_the_hint_invariants(tmp_path: Path) -> None:
    """A release CI has (Debian's 6.1): its states are PcpuChunkMainline's, so the 5.2 hint invariants run on them,
    and the search meets the findings of the model variant mainline -- each written trace replays on the C."""
    source = kernel("debian-6.1")
    proc = cli("explore", "--source", str(source.percpu_c), "--geometry", "2x8", "--depth", "2", "--examples", "50",
               "--traces", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "layout 5.14" in proc.stdout and "scan-hint-before-contig-hint, scan-hint-region-free" in proc.stdout
    found = {p.name.split("__")[2].removesuffix(".json"): CTrace.from_json(json.loads(p.read_text()))
             for p in tmp_path.glob("*.json")}
    assert {"chunk-hint-accurate-in-one-block", "scan-hint-before-contig-hint"} <= set(found) <= MAINLINE_FINDINGS
    driver = build(source, 8, 2)
    for name, trace in found.items():
        assert f"BROKEN {name} after {len(trace.ops)} ops" in proc.stdout
        assert reproduce(driver, trace) is not None, name


def test_release_dumps_convert_to_their_model_chunk_key_for_key() -> None:
    """4.14 and 5.2+ dumps become the release's own model chunk with nothing lost or renamed: it dumps back whole."""
    for name, layout in (("linux-4.14.5", "4.14"), ("linux-5.4.286", "5.2"), ("linux-5.10.89", "5.9"),
                         ("debian-6.12", "5.14")):
        if name not in REQUIRED and not (KERNELS / name / "mm" / "percpu.c").is_file():
            continue  # a mirror's file: the Debian row always runs
        g = Geometry.parse("2x8")
        chunk = KernelChunk(build(kernel(name), 8, 2), g)
        try:
            for op in (Alloc(3, 1, True), Alloc(6, 2), Free(0), Populate(1, 2)):
                chunk.apply(op)
            dump = chunk.dump()
        finally:
            chunk.close()
        alloc, model_chunk = to_model(dump, g)
        assert type(model_chunk).__name__ == {"4.14": "PcpuChunk414", "5.2": "PcpuChunk54", "5.9": "PcpuChunk54",
                                               "5.14": "PcpuChunkMainline"}[layout]
        assert model_chunk.dump() == dump["chunks"]["dynamic"], name  # type: ignore[index]
        assert alloc.pcpu_nr_empty_pop_pages == dump["pcpu_nr_empty_pop_pages"]


def test_cli_diff_reports_identity() -> None:
    source = kernel("seed-v1-patch09")
    proc = cli("diff", "--source", str(source.percpu_c.parent.parent), "--variant", "v1-patch09", "--traces", "50")
    assert proc.returncode == 0, proc.stderr
    assert "50/50 traces identical (100.00 %)" in proc.stdout


def test_cli_diff_exits_1_when_a_trace_diverges() -> None:
    """6.12's C is not the 2017 posting: the first divergence is printed (or is in the JSON), and exit 1."""
    source = kernel("debian-6.12")
    proc = cli("diff", "--source", str(source.percpu_c), "--variant", "v1", "--traces", "5")
    assert proc.returncode == 1, proc.stderr
    assert "0/5 traces identical" in proc.stdout and "first divergence at step" in proc.stdout
    proc = cli("diff", "--source", str(source.percpu_c), "--variant", "v1", "--traces", "5", "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["identical"] == 0 and report["first_divergence"]["ops"]


def _copy(source: KernelSource, folder: Path, text: str) -> Path:
    (folder / "mm").mkdir(parents=True)
    (folder / "mm" / "percpu.c").write_text(text, encoding="utf-8")
    (folder / "mm" / "percpu-internal.h").write_text(source.internal_h_text, encoding="utf-8")
    return folder


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    source = kernel("debian-6.12")
    broken = _copy(source, tmp_path / "broken",
                   source.percpu_c_text.replace("int pcpu_nr_slots __ro_after_init;", "int pcpu_nr_slots __ro_after_init"))
    unknown = _copy(source, tmp_path / "unknown", "int x;\n")
    cases = {
        str(tmp_path / "missing"): "no such file or folder",
        str(broken): "does not compile: mm/percpu.c:",
        str(unknown): "unknown release layout",
    }
    for path, message in cases.items():
        proc = cli("explore", "--source", path, "--depth", "1", "--examples", "1")
        assert proc.returncode == 2, (path, proc.stdout, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = cli("diff", "--source", str(source.percpu_c), "--variant", "v1", "--geometry", "2x6")
    assert proc.returncode == 2 and "--geometry" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_replay_on_the_c_reproduces_a_claim() -> None:
    """``replay --source``: a trace explore wrote, and a model trace of the mainline variant, on Debian's 6.12 C."""
    source = kernel("debian-6.12")
    here = Path(__file__).parent
    for trace in (here / "kernel_traces" / "debian-6.12" / "5.14__2x8__chunk-hint-accurate-in-one-block.json",
                  here / "release_traces" / "mainline__chunk-hint-accurate-in-one-block.json"):
        proc = cli("replay", str(trace), "--source", str(source.percpu_c))
        assert proc.returncode == 0, (trace, proc.stdout, proc.stderr)
        assert "result: claimed violation of chunk-hint-accurate-in-one-block reproduced at step 2 on the C" \
            in proc.stdout


def test_cli_replay_on_the_c_says_when_a_claim_does_not_hold(tmp_path: Path) -> None:
    """The same ops claiming a violation the C does not show: exit 1, and one line saying so."""
    source = kernel("debian-6.12")
    claim = json.loads((Path(__file__).parent / "release_traces" / "mainline__chunk-hint-accurate-in-one-block.json")
                       .read_text())
    claim["violates"] = "free-bits-count"
    (tmp_path / "t.json").write_text(json.dumps(claim))
    proc = cli("replay", str(tmp_path / "t.json"), "--source", str(source.percpu_c))
    assert proc.returncode == 1 and "not reproduced on the C" in proc.stdout, (proc.stdout, proc.stderr)
    proc = cli("replay", str(tmp_path / "t.json"), "--source", str(source.percpu_c), "--json")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
