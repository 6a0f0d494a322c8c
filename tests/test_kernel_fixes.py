"""The fixes of docs/kernels.md on the C: docs/patches/*.patch applied at run time, and ``mainline-fixed``.

The patched C is never stored: each test copies a release's ``mm/`` to ``tmp_path`` and applies patches
with ``patch(1)``.  Debian 6.12 is required (CI has it); 7.1.3 and 4.14.5 are mirrors' files and skip when
absent.  ``mainline-fixed`` (the model) must equal the C with ``mainline-fixed.patch``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from installed import pcpu_verify_exe
from test_release_fidelity import GEOMETRIES, TRACES_PER_GEOMETRY, differences, kernel

from pcpuverify.counterexamples.kernel_machine import hypothesis_c
from pcpuverify.counterexamples.kernel_search import CTrace, explore_c, random_c
from pcpuverify.counterexamples.kernel_shrink import reproduce
from pcpuverify.invariants.check import first_violation
from pcpuverify.kernel.build import build
from pcpuverify.kernel.source import KernelSource, load_source
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import ChunkInit
from pcpuverify.model.trace import Trace, load_trace

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "docs" / "patches"
RELEASE_TRACES = Path(__file__).with_name("release_traces")
C_TRACES_DIR = Path(__file__).with_name("kernel_traces")


def c_trace(path: Path) -> CTrace:
    return CTrace.from_json(json.loads(path.read_text()))


# Debian 6.12's traces, shrunk on the C (docs/kernels.md), by file name: explore's, the 3x4 one found on
# mainline-fixed and shrunk on the unpatched C (docs/gallery.md 17), and the 1x16 one found on mainline-fixed
# and shrunk on the C with its first seven fixes (docs/gallery.md 18), with the patches that remove each
C_FIXES = {
    "5.14__2x8__chunk-hint-accurate-in-one-block": ("chunk-md-free-end.patch",),
    "5.14__3x8__chunk-hint-off-by-at-most-a-page": ("chunk-md-free-end.patch",),
    "5.14__3x4__chunk-hint-off-by-at-most-a-page": ("chunk-md-free-edge.patch",),
    "5.14__2x8__block-left-right-free-exact": ("block-refresh-right-free.patch",),
    "5.14__2x8__scan-hint-before-contig-hint": ("scan-hint-equal-before.patch",),
    "5.14__1x32__block-contig-hint-exact": ("scan-hint-inside-new-contig.patch",),
    # fix 8 forgets the scan hint, which then must stay "unknown": fix 5 (gallery 18)
    "5.14__1x16__block-contig-hint-exact": ("scan-hint-not-from-nothing.patch", "scan-hint-contig-moves-forward.patch"),
}
C_TRACES = {stem: c_trace(C_TRACES_DIR / "debian-6.12" / f"{stem}.json") for stem in C_FIXES}
# found on the C with the first fix alone: what that fix unmasks (docs/kernels.md)
UNMASKED = c_trace(C_TRACES_DIR / "unmasked" / "5.14__3x8__chunk-hint-accurate-in-one-block.json")
# found on mainline-fixed with fixes 1 to 8 by following a counterexample to induction, unmasked by fix 1 alone
# (docs/gallery.md 19)
HIDDEN_AREA = c_trace(C_TRACES_DIR / "unmasked" / "5.14__3x8__chunk-hint-accurate-in-one-block__hidden-area.json")


def patched(release: str, patch_names: tuple[str, ...], where: Path, without: tuple[str, ...] = ()) -> KernelSource:
    """``release``'s mm/percpu.c and header copied to ``where`` with ``docs/patches/<name>`` applied, in order,
    then each of ``without`` reversed (a fix taken back out of the combined patch)."""
    source = kernel(release)
    shutil.copytree(source.percpu_c.parent, where / "mm")
    for name, direction in [(n, "--forward") for n in patch_names] + [(n, "--reverse") for n in without]:
        proc = subprocess.run(["patch", "-p1", direction, "-d", str(where), "-i", str(PATCHES / name)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    fixed = load_source(where)
    assert fixed.percpu_c_text != source.percpu_c_text
    return fixed


FIXED = ("mainline-fixed.patch",)


@pytest.mark.slow
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("release", ["debian-6.12", "linux-7.1.3"])
def test_mainline_fixed_is_the_patched_c(release: str, geometry: str, tmp_path: Path) -> None:
    """5,000 random traces of 30 ops per geometry: every return value and the whole dump after every step."""
    source = patched(release, FIXED, tmp_path)
    identical, found = differences("mainline-fixed", source, Geometry.parse(geometry), TRACES_PER_GEOMETRY, seed=0)
    assert not found, f"{len(found)} of {TRACES_PER_GEOMETRY} traces differ; the first:\n{found[0]}"
    assert identical == TRACES_PER_GEOMETRY


def test_the_unpatched_c_is_not_mainline_fixed() -> None:
    """The comparison above can fail: without the patch the C differs from mainline-fixed."""
    identical, found = differences("mainline-fixed", "debian-6.12", Geometry.parse("2x8"), 300, seed=0)
    assert found and identical < 300


@pytest.mark.slow
def test_the_c_search_on_the_patched_c_breaks_nothing(tmp_path: Path) -> None:
    """Debian 6.12 with the patch, breadth first to depth 3 at 2x8 (4,747 states) and to depth 2 at 3x8, and on
    200 random walks and 200 Hypothesis examples at each: every invariant of its layout holds, the lemmas the
    proofs added included (of the blocks and of ``chunk_md``: docs/kernels.md).  Unpatched, the same search breaks
    what docs/kernels.md lists, two of those lemmas on a block's md (gallery 14 to 16) and the five asked of
    ``chunk_md``."""
    fixed = patched("debian-6.12", FIXED, tmp_path)
    unfixed = kernel("debian-6.12")
    three = {"chunk-hint-accurate-in-one-block", "block-left-right-free-exact", "scan-hint-before-contig-hint"}
    on_a_block = {"scan-hint-clear-of-contig-hint", "scan-hint-maximal"}
    # the lemmas asked of chunk_md: broken through finding 12 (and gallery 17), kept with the patch
    on_chunk_md = {"chunk-md-scan-hint-clear-of-contig-hint", "chunk-md-scan-hint-maximal",
                   "chunk-md-contig-hint-longest", "chunk-md-contig-hint-maximal", "chunk-hint-covers-every-block"}
    for source, geometry, depth, expected in ((fixed, "2x8", 3, set()), (fixed, "3x8", 2, set()),
                                              (unfixed, "2x8", 3, three | on_a_block | on_chunk_md),
                                              (unfixed, "3x8", 2, three | {"chunk-hint-off-by-at-most-a-page"}
                                               # the blocks' third lemma, on a run before the contig hint (gallery 18)
                                               | on_a_block | {"scan-hint-largest-before"} | on_chunk_md)):
        g = Geometry.parse(geometry)
        result = explore_c(source, g, depth)
        random_c(source, g, 200, 30, 0, result)
        hypothesis_c(build(source, g.block_bits, g.nr_pages), g, 200, 0, result)
        assert result.states > 1900 and "scan-hint-region-free" in result.invariants
        assert set(result.found) == expected, (geometry, {n: t.message for n, t in result.found.items()})


@pytest.mark.parametrize("release", ["debian-6.12", "linux-7.1.3"])
def test_each_patch_removes_its_finding_on_the_c(release: str, tmp_path: Path) -> None:
    """Each finding's trace, shrunk on the C, breaks the unpatched C and not the C with its own fix (or the two
    fixes it needs, neither enough alone)."""
    for i, (stem, patch_names) in enumerate(C_FIXES.items()):
        trace = C_TRACES[stem]
        g = trace.geometry
        assert reproduce(build(kernel(release), g.block_bits, g.nr_pages), trace) is not None, stem
        fixed = patched(release, patch_names, tmp_path / str(i))
        assert reproduce(build(fixed, g.block_bits, g.nr_pages), trace) is None, stem
        for j, name in enumerate(patch_names if len(patch_names) > 1 else ()):  # each alone is not enough
            alone = patched(release, (name,), tmp_path / f"{i}-{j}")
            assert reproduce(build(alone, g.block_bits, g.nr_pages), trace) is not None, (stem, name)
    # the break the first fix unmasks, and its own fix on top
    g = UNMASKED.geometry
    assert reproduce(build(kernel(release), g.block_bits, g.nr_pages), UNMASKED) is None
    first = patched(release, ("chunk-md-free-end.patch",), tmp_path / "first")
    assert reproduce(build(first, g.block_bits, g.nr_pages), UNMASKED) is not None
    both = patched(release, ("chunk-md-free-end.patch", "scan-hint-not-from-nothing.patch"), tmp_path / "both")
    assert reproduce(build(both, g.block_bits, g.nr_pages), UNMASKED) is None
    # the area chunk_md never sees: unmasked by the first fix, kept by fixes 1 to 8, removed by fix 9
    g = HIDDEN_AREA.geometry
    assert reproduce(build(kernel(release), g.block_bits, g.nr_pages), HIDDEN_AREA) is None
    assert reproduce(build(first, g.block_bits, g.nr_pages), HIDDEN_AREA) is not None
    eight = patched(release, FIXED, tmp_path / "eight", without=("chunk-refresh-full-scan.patch",))
    assert reproduce(build(eight, g.block_bits, g.nr_pages), HIDDEN_AREA) is not None
    nine = patched(release, FIXED, tmp_path / "nine")
    assert reproduce(build(nine, g.block_bits, g.nr_pages), HIDDEN_AREA) is None


def test_the_model_traces_of_mainline_break_nothing_on_mainline_fixed() -> None:
    """tests/release_traces/mainline__*.json, minimised on mainline, replayed on mainline-fixed: no longer broken."""
    traces = sorted(RELEASE_TRACES.glob("mainline__*.json"))
    assert len(traces) == 4
    for path in traces:
        trace = load_trace(path)
        assert trace.violates and first_violation(trace, trace.violates) is not None
        fixed = dataclasses.replace(trace, variant="mainline-fixed")
        assert first_violation(fixed, trace.violates) is None, path.name


def test_the_c_traces_break_mainline_and_not_mainline_fixed() -> None:
    """The C's traces, replayed on the models: each breaks mainline as it breaks the C, and none breaks
    mainline-fixed (the unmasked ones need the first fix to show, so they break neither model)."""
    for stem, trace in C_TRACES.items():
        name = trace.violates
        for variant, broken in (("mainline", True), ("mainline-fixed", False)):
            model = Trace(variant=variant, geometry=trace.geometry, init=ChunkInit(), ops=trace.ops, violates=name)
            assert (first_violation(model, name) == len(trace.ops) - 1) is broken, (stem, variant)
    for variant in ("mainline", "mainline-fixed"):
        for unmasked in (UNMASKED, HIDDEN_AREA):
            model = Trace(variant=variant, geometry=unmasked.geometry, init=ChunkInit(), ops=unmasked.ops,
                          violates=unmasked.violates)
            assert first_violation(model, unmasked.violates) is None, variant


V4_14_FIXES = {"chunk-hint-accurate-in-one-block": "v4.14-alloc-overlap.patch",
               "nr-empty-pop-pages-matches-bitmap": "v4.14-alloc-overlap.patch",
               "chunk-hint-never-above-available": "v4.14-free-region.patch"}


@pytest.mark.slow
def test_each_v4_14_patch_removes_its_finding_on_the_c(tmp_path: Path) -> None:
    """4.14.5's traces (explore's, shrunk on the C) break it, and not with their fix; with all three patches
    (v4.14-fixed.patch) the C search breaks nothing at 2x8, depth 2."""
    for i, (name, patch_name) in enumerate(V4_14_FIXES.items()):
        trace = c_trace(C_TRACES_DIR / "linux-4.14.5" / f"4.14__2x8__{name}.json")
        assert reproduce(build(kernel("linux-4.14.5"), 8, 2), trace) is not None, name
        fixed = patched("linux-4.14.5", (patch_name,), tmp_path / str(i))
        assert reproduce(build(fixed, 8, 2), trace) is None, name
    source = patched("linux-4.14.5", ("v4.14-fixed.patch",), tmp_path / "all")
    g = Geometry.parse("2x8")
    result = explore_c(source, g, 2)
    random_c(source, g, 100, 20, 0, result)
    assert result.states == 429 and "chunk-hint-never-above-available" in result.invariants
    assert not result.found, {n: t.message for n, t in result.found.items()}


PROOF_TRACES = Path(__file__).with_name("proof_traces")


@pytest.mark.slow
@pytest.mark.parametrize("release", ["debian-6.12", "linux-7.1.3"])
@pytest.mark.parametrize("name", ["scan-hint-before-contig-hint", "scan-hint-clear-of-contig-hint",
                                  "2x8__scan-hint-before-contig-hint"])
def test_the_proofs_findings_on_the_c(release: str, name: str, tmp_path: Path) -> None:
    """The 1x8 proofs' finding (docs/gallery.md 16), found and shortened on the model, and its 2x8 witness:
    `pcpu-verify replay --source` reproduces it on the C, and no longer with scan-hint-equal-after-alignment.patch
    or with mainline-fixed.patch."""
    trace = PROOF_TRACES / f"mainline__{name}.json"
    source = kernel(release).percpu_c.parent.parent

    def replay(tree: Path) -> int:
        return subprocess.run([pcpu_verify_exe(), "replay", str(trace), "--source", str(tree)],
                              capture_output=True, text=True, check=False).returncode

    assert replay(source) == 0
    for i, patch_names in enumerate((("scan-hint-equal-after-alignment.patch",), FIXED)):
        patched(release, patch_names, tmp_path / str(i))
        assert replay(tmp_path / str(i)) == 1, patch_names


@pytest.mark.slow
@pytest.mark.parametrize("pages", [1, 2, 3])
def test_the_4_14_proofs_accurate_free_witness_is_removed_by_alloc_overlap(pages: int, tmp_path: Path) -> None:
    """The witnesses of linux-4.14's chunk-hint-accurate-in-one-block/free row (docs/gallery.md 9): a full chunk
    keeps a stale contig_bits, the next free leaves it above the longest free run.  They reproduce on v4.14.5's
    C and no longer once the alloc path refreshes on overlap (v4.14-alloc-overlap.patch)."""
    trace = PROOF_TRACES / f"linux-4.14__{pages}x8__chunk-hint-accurate-in-one-block.json"
    fixed = patched("linux-4.14.5", ("v4.14-alloc-overlap.patch",), tmp_path)
    for tree, exit_code in ((kernel("linux-4.14.5").percpu_c, 0), (fixed.percpu_c, 1)):  # 1: not reproduced
        proc = subprocess.run([pcpu_verify_exe(), "replay", str(trace), "--source", str(tree)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == exit_code, proc.stdout


@pytest.mark.parametrize(("release", "trace_file"), [
    ("linux-4.14.5", "linux-4.14.5/4.14__3x4__chunk-hint-off-by-at-most-a-page.json"),
    ("linux-5.4.286", "debian-6.12/5.14__3x4__chunk-hint-off-by-at-most-a-page.json"),
    ("debian-6.12", "debian-6.12/5.14__3x4__chunk-hint-off-by-at-most-a-page.json"),
    ("linux-7.1.3", "debian-6.12/5.14__3x4__chunk-hint-off-by-at-most-a-page.json"),
])
def test_the_clipped_free_breaks_the_page_bound_in_every_release(release: str, trace_file: str) -> None:
    """docs/gallery.md 17: free areas clipped to their blocks on both sides of a free block leave the chunk hint
    5 bits short at 3x4, more than "off by up to a page", on the C of 4.14.5 (as merged) through 7.1.3."""
    trace = c_trace(C_TRACES_DIR / trace_file)
    g = trace.geometry
    assert (g.block_bits, g.nr_pages, len(trace.ops)) == (4, 3, 8)
    found = reproduce(build(kernel(release), g.block_bits, g.nr_pages), trace)
    assert found is not None
    ops, message = found
    assert len(ops) == 8 and "4 is 5 bits below the longest free run 9" in message


@pytest.mark.parametrize("release", ["linux-5.4.286", "debian-6.12", "linux-7.1.3"])
def test_the_hidden_area_breaks_every_5_2_release(release: str, tmp_path: Path) -> None:
    """docs/gallery.md 18: a better-aligned contig hint leaves the area it replaced before it, recorded nowhere;
    a smaller free past it becomes the scan hint and the refresh after the next allocation misses it.  13 ops at
    1x16 break the C of 5.4.286 through 7.1.3; without ``free 0`` the scan hint is made from nothing (fix 5's
    path), and 12 ops break the unpatched C but not the C with fix 5."""
    trace = C_TRACES["5.14__1x16__block-contig-hint-exact"]
    g = trace.geometry
    assert (g.block_bits, g.nr_pages, len(trace.ops)) == (16, 1, 13)
    unpatched = build(kernel(release), g.block_bits, g.nr_pages)
    found = reproduce(unpatched, trace)
    assert found is not None and len(found[0]) == 13
    assert "md_blocks[0].contig_hint 1, a scan gives 2" in found[1]
    from_nothing = dataclasses.replace(trace, ops=tuple(op for i, op in enumerate(trace.ops) if i != 8))
    assert reproduce(unpatched, from_nothing) is not None
    fix_5 = patched(release, ("scan-hint-not-from-nothing.patch",), tmp_path)
    assert reproduce(build(fix_5, g.block_bits, g.nr_pages), from_nothing) is None
