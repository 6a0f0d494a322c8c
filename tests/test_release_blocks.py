"""The scan_hint allocator's block contracts (``proofs/blocks/release_contracts.py``): 5.2's ``pcpu_block_md``.

Conformance of each role with the model's own function, and of the model's with the kernel's (Debian 6.12's C,
and with ``mainline-fixed.patch``), ``mainline-fixed`` proved, ``mainline``'s known block-level findings violated
and replayed on the model and on the C, the search's guarantees needed, and the CLI.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import z3
from installed import pcpu_verify_exe

from test_kernel_fixes import FIXED, patched

from pcpuverify.exits import EXIT_TOOL_FAILURE
from pcpuverify.kernel.source import load_source
from pcpuverify.model.linux_5_4 import PcpuBlockMd
from pcpuverify.proofs.blocks import release_contracts
from pcpuverify.proofs.blocks.release_contracts import (
    BLOCK_INVARIANTS,
    block_violations,
    prove_role,
    run_release_block_suite,
)
from pcpuverify.proofs.blocks.release_roles import (
    RELEASE_ROLES,
    SCAN,
    ReleaseBlock,
    fresh_release_block,
    md_of,
    release_area,
    release_block,
    release_transition,
    run_release_on_c,
    run_release_on_model,
)
from pcpuverify.proofs.blocks.roles import ALLOC_ROLES, FREE_ROLES, Role
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.symbolic.release_state import RELEASE_BLOCK_FIELDS

RELEASES = ("linux-5.4", "mainline", "mainline-fixed")
ROOT = Path(__file__).resolve().parent.parent  # inside the project: prove's next steps read its config
DEBIAN_6_12 = Path(__file__).with_name("kernels") / "debian-6.12"  # mainline's code (docs/releases.md)
BITWUZLA = SolverOptions(solver="bitwuzla", timeout=300)

# mainline's block8 rows that break, each a mechanism docs/gallery.md has (15, 16, 18, and the right_free one
# that mainline-fixed's refreshed_right_free fixes); every other row is PROVED
MAINLINE_VIOLATED = {
    ("scan-hint-before-contig-hint", "pcpu_block_update_scan"),
    ("scan-hint-largest-before", "pcpu_block_update_scan"),
    ("scan-hint-before-contig-hint", "pcpu_block_update_hint_alloc:same"),
    ("scan-hint-largest-before", "pcpu_block_update_hint_alloc:same"),
    ("block-left-right-free-exact", "pcpu_block_update_hint_alloc:same"),
    ("scan-hint-before-contig-hint", "pcpu_block_update_hint_alloc:start"),
    ("scan-hint-before-contig-hint", "pcpu_block_update_hint_alloc:end"),
    ("scan-hint-largest-before", "pcpu_block_update_hint_alloc:end"),
    ("block-left-right-free-exact", "pcpu_block_update_hint_alloc:end"),
    ("scan-hint-before-contig-hint", "pcpu_block_update_hint_free:same"),
    ("scan-hint-clear-of-contig-hint", "pcpu_block_update_hint_free:same"),
    ("scan-hint-maximal", "pcpu_block_update_hint_free:same"),
    ("scan-hint-largest-before", "pcpu_block_update_hint_free:same"),
    ("scan-hint-clear-of-contig-hint", "pcpu_block_update_hint_free:start"),
    ("scan-hint-maximal", "pcpu_block_update_hint_free:start"),
    ("scan-hint-largest-before", "pcpu_block_update_hint_free:start"),
    ("scan-hint-largest-before", "pcpu_block_update_hint_free:end"),
}


def _area_for(role: Role, B: int, rng: random.Random) -> tuple[int, int]:
    if role.part == "same" or role is SCAN:
        lo = rng.randrange(B)
        return lo, rng.randint(lo + 1, B)
    return {"start": (rng.randrange(B), B), "end": (0, rng.randint(1, B)), "middle": (0, B)}[role.part]


@pytest.mark.parametrize("variant", RELEASES)
@pytest.mark.parametrize("block_bits", [8, 16])
def test_each_release_role_in_z3_equals_the_models_function(variant: str, block_bits: int) -> None:
    """Conformance of the block transitions: on random blocks (any metadata, any area), Z3 and the model agree."""
    rng = random.Random(block_bits)
    for role in RELEASE_ROLES:
        pre = fresh_release_block(block_bits, "pre")
        a = release_area(role, block_bits)
        post = release_transition(variant, role, pre, a)
        for _ in range(12):
            bits = rng.getrandbits(block_bits)
            md = PcpuBlockMd(*(rng.randint(0, block_bits) for _ in RELEASE_BLOCK_FIELDS))
            lo, hi = _area_for(role, block_bits, rng)
            solver = z3.Solver()
            solver.add(pre.alloc_map == bits, a.lo == lo, a.hi == hi,
                       *[getattr(md_of(pre), f) == getattr(md, f) for f in RELEASE_BLOCK_FIELDS])
            assert solver.check() == z3.sat
            got = release_block(solver.model(), post)
            want = run_release_on_model(variant, role, ReleaseBlock(block_bits, bits, md), lo, hi)
            assert (got.bits, got.md) == (want.bits, want.md), (role.name, bits, md, lo, hi)


def _random_block(B: int, rng: random.Random) -> ReleaseBlock:
    return ReleaseBlock(B, rng.getrandbits(B), PcpuBlockMd(*(rng.randint(0, B) for _ in RELEASE_BLOCK_FIELDS)))


@pytest.mark.parametrize("block_bits", [8, 16])
def test_each_release_role_on_the_model_equals_the_kernels_function(tmp_path: Path, block_bits: int) -> None:
    """The model's block step and the C's (``kernel/block_step.py``: the kernel's own functions on the same
    chunk) agree on random blocks: ``mainline`` against Debian 6.12, ``mainline-fixed`` against it patched."""
    rng = random.Random(block_bits)
    for variant, source in (("mainline", load_source(DEBIAN_6_12)),
                            ("mainline-fixed", patched("debian-6.12", FIXED, tmp_path))):
        for _ in range(40):
            role = rng.choice(RELEASE_ROLES)
            before = _random_block(block_bits, rng)
            lo, hi = _area_for(role, block_bits, rng)
            want = run_release_on_model(variant, role, before, lo, hi)
            assert run_release_on_c(source, role, before, lo, hi) == want, (variant, role.name, before, lo, hi)


def test_mainline_fixed_keeps_every_invariant_through_a_free_inside_the_block_and_mainline_does_not() -> None:
    """One role, both variants: mainline breaks the four scan_hint claims gallery 15 and 18 break, and each
    VIOLATED row's block replays on the model, and on Debian 6.12's C, to a block that breaks it."""
    names = list(BLOCK_INVARIANTS)
    fixed = prove_role("mainline-fixed", FREE_ROLES[0], 8, names, BITWUZLA)
    assert {r.verdict for r in fixed} == {Verdict.PROVED}, [r.detail for r in fixed if not r.verdict.passed]
    # proved the weaker way (release_instances): the first row names the role's shared queries, each its own
    assert {r.extra["queries"] for r in fixed} == {"instantiated"}
    first, exact = fixed[0].extra["solvers"], fixed[names.index("block-contig-hint-exact")].extra["solvers"]
    assert isinstance(first, dict) and isinstance(exact, dict)
    shared = [q for q in first if q.startswith(("implied: ", "step: "))]
    assert len(shared) == 3 + 6 and "step: it is the freed run" in shared
    assert "a longer run" in exact
    unfixed = prove_role("mainline", FREE_ROLES[0], 8, names, BITWUZLA)
    violated = {r.invariant for r in unfixed if r.verdict is Verdict.VIOLATED}
    # a weaker query's sat is never a finding: each VIOLATED row is the whole query's, replayed
    assert all(r.extra.get("queries") != "instantiated" for r in unfixed if r.verdict is Verdict.VIOLATED)
    assert violated == {name for name, op in MAINLINE_VIOLATED if op == FREE_ROLES[0].name}
    assert {r.verdict for r in unfixed if r.invariant not in violated} == {Verdict.PROVED}
    _replays_on_the_c([r for r in unfixed if r.verdict is Verdict.VIOLATED])


def _replays_on_the_c(violated: list[Result]) -> None:
    """Each row's block meets every invariant, and the C's function leaves the model's block, which breaks it."""
    source = load_source(DEBIAN_6_12)
    roles = {role.name: role for role in RELEASE_ROLES}
    for r in violated:
        found = r.extra["counterexample"]
        before = ReleaseBlock(8, int(found["block"]["alloc_map"][::-1], 2), PcpuBlockMd(**found["block"]["md"]))
        assert block_violations("mainline", before, BLOCK_INVARIANTS) == []
        after = run_release_on_c(source, roles[r.op], before, *found["area"])
        assert after == run_release_on_model("mainline", roles[r.op], before, *found["area"])
        assert block_violations("mainline", after, [r.invariant]), r.detail


@pytest.mark.parametrize("role, name", [(SCAN, "scan-hint-before-contig-hint"),
                                        (ALLOC_ROLES[0], "block-left-right-free-exact")])
def test_without_the_searchs_guarantee_the_row_breaks(monkeypatch: pytest.MonkeyPatch, role: Role, name: str) -> None:
    """The search's guarantees are needed, so not vacuous: without "the skipped area lies before the contig
    hint" the scan may record the contig hint itself (scan_hint == contig_hint at its start); without "not
    inside the leading free run" an allocation at bit 1 keeps left_free over it.  Both replay on the model."""
    assert prove_role("mainline-fixed", role, 8, [name], BITWUZLA)[0].verdict is Verdict.PROVED
    monkeypatch.setattr(release_contracts, "search_guarantee", lambda role, q: z3.BoolVal(True))
    monkeypatch.setattr(release_contracts, "search_unmet", lambda role, block, lo, hi: [])
    r = prove_role("mainline-fixed", role, 8, [name], BITWUZLA)[0]
    assert r.verdict is Verdict.VIOLATED, r.to_json()


@pytest.mark.slow
def test_every_release_block_row_at_8_bits() -> None:
    fixed = run_release_block_suite("mainline-fixed", 8, BITWUZLA)
    assert len(fixed) == len(RELEASE_ROLES) * len(BLOCK_INVARIANTS) + 2  # and what the NxblockB rows rest on
    assert [(r.invariant, r.op) for r in fixed[-2:]] == [("free-same-block-runs", "pcpu_block_update_hint_free:same"),
                                                         ("md-abstraction-sound", "pcpu_block_md")]
    assert {r.verdict for r in fixed} == {Verdict.PROVED}, [r.detail for r in fixed if not r.verdict.passed]
    for variant in ("mainline", "linux-5.4"):
        rows = run_release_block_suite(variant, 8, BITWUZLA)
        assert {(r.invariant, r.op) for r in rows if r.verdict is Verdict.VIOLATED} == MAINLINE_VIOLATED
        assert {r.verdict for r in rows if (r.invariant, r.op) not in MAINLINE_VIOLATED} == {Verdict.PROVED}
        if variant == "mainline":
            _replays_on_the_c([r for r in rows if r.verdict is Verdict.VIOLATED])


def _pcpu_verify(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([pcpu_verify_exe(), *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_prove_runs_the_release_block_rows_and_refuses_what_has_none() -> None:
    done = _pcpu_verify("prove", "--variant", "mainline-fixed", "--geometry", "block8", "--invariant",
                        "block-nr-bits", "--solver", "bitwuzla", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)["results"]
    assert sorted(r["op"] for r in rows) == sorted(role.name for role in RELEASE_ROLES)
    assert {(r["geometry"], r["result"]) for r in rows} == {("block8", "PROVED")}
    found = _pcpu_verify("prove", "--variant", "mainline", "--geometry", "block8", "--invariant", "scan-hint-maximal",
                         "--solver", "bitwuzla", cwd=ROOT)  # a finding that is a block, not a trace
    assert found.returncode == 0 and "mainline block8 scan-hint-maximal / " in found.stdout, found.stderr[-2000:]
    steps = found.stdout[found.stdout.index("\nnext:\n"):]
    assert "--rows" in steps and "replay TRACE" not in steps  # nothing to replay
    for geometry, variant in (("block8", "linux-4.14"), ("2xblock8", "linux-4.14")):
        refused = _pcpu_verify("prove", "--variant", variant, "--geometry", geometry, "--no-layout")
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.startswith(f"pcpu-verify: error: --geometry {geometry}: no rows for {variant}: ")
        assert len(refused.stderr.splitlines()) == 1


def test_prove_source_replays_the_violated_block_rows_on_the_c(tmp_path: Path) -> None:
    """``--source``: each VIOLATED row's block is run through the kernel's own function too; against a C that
    computes another block (``mainline``'s rows on the C with ``mainline-fixed.patch``) the row is NONCONFORMANT,
    never VIOLATED; without a block label, or on a C without scan_hint blocks, one line and exit 2."""
    args = ("prove", "--variant", "mainline", "--geometry", "block8", "--invariant", "scan-hint-maximal",
            "--solver", "bitwuzla", "--json", "--source")
    same = _pcpu_verify(*args, str(DEBIAN_6_12))
    rows = json.loads(same.stdout)["results"]
    violated = [r for r in rows if r["result"] == "VIOLATED"]
    assert same.returncode == 0 and len(violated) == 2, same.stderr[-2000:]  # prove reports; check gates
    assert all(r["c_source"].endswith("debian-6.12/mm/percpu.c") and "the same on" in r["detail"] for r in violated)
    fixed_c = patched("debian-6.12", FIXED, tmp_path / "fixed")
    other = _pcpu_verify(*args, str(fixed_c.percpu_c))
    assert other.returncode == EXIT_TOOL_FAILURE
    rows = json.loads(other.stdout)["results"]
    assert {r["result"] for r in rows if r["op"] in {v["op"] for v in violated}} == {"NONCONFORMANT"}
    trapping = tmp_path / "trapping"  # a C that dies in the function the model ran: the row says so, no traceback
    shutil.copytree(DEBIAN_6_12 / "mm", trapping / "mm")
    text = (trapping / "mm" / "percpu.c").read_text()
    (trapping / "mm" / "percpu.c").write_text(text.replace("\tint contig = end - start;\n",
                                                           "\tint contig = end - start;\n\t__builtin_trap();\n", 1))
    died = _pcpu_verify(*args, str(trapping))
    assert died.returncode == EXIT_TOOL_FAILURE and "Traceback" not in died.stderr, died.stderr[-2000:]
    rows = json.loads(died.stdout)["results"]
    dead = [r for r in rows if r["op"] in {v["op"] for v in violated}]
    assert {r["result"] for r in dead} == {"NONCONFORMANT"}
    assert all("the C driver ended" in r["detail"] for r in dead), dead
    no_label = _pcpu_verify("prove", "--variant", "mainline", "--geometry", "1x8", "--source", str(DEBIAN_6_12))
    seed = tmp_path / "seed"  # what the layout detection reads of the 2017 posting (kernel/source.py)
    seed.mkdir()
    (seed / "percpu.c").write_text("int first_free_block;\nint free_bits;\nint contig_hint;\n")
    (seed / "percpu-internal.h").write_text("")
    seed_c = _pcpu_verify("prove", "--variant", "mainline", "--geometry", "block8", "--source", str(seed))
    broken = tmp_path / "broken"  # a 5.2 layout gcc refuses: built before any proof, so one line, no traceback
    shutil.copytree(DEBIAN_6_12 / "mm", broken / "mm")
    text = (broken / "mm" / "percpu.c").read_text()
    (broken / "mm" / "percpu.c").write_text(text.replace("static void pcpu_block_update_scan(",
                                                         "static void pcpu_block_update_scan(int nonsense, ", 1))
    refused_build = _pcpu_verify("prove", "--variant", "mainline", "--geometry", "block8", "--source", str(broken))
    assert "does not compile" in refused_build.stderr
    for refused in (no_label, seed_c, refused_build):
        assert refused.returncode == 2 and refused.stdout == "" and len(refused.stderr.splitlines()) == 1
        assert refused.stderr.startswith("pcpu-verify: error: --source")
