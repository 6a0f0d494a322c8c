"""The first-chunk layout over 64-bit values (proofs/layout.py): verdicts, counterexamples, vacuity, conformance.

Every VIOLATED counterexample is replayed here in plain Python integers with
64-bit wraparound -- an implementation independent of the Z3 encoding -- and
must meet the preconditions and break the property there too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
import z3
from conftest import register_for_test

from pcpuverify.model.variants import Fixed
from pcpuverify.proofs import layout as lay
from pcpuverify.proofs.layout import (
    LAYOUT_PROPERTIES,
    LayoutParams,
    cross_check,
    evaluate_layout,
    prove_layout_property,
    run_layout_suite,
)
from pcpuverify.proofs.layout.prove import _fmt
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import SolverOptions, check
from pcpuverify.symbolic.encode import SymFixed
from pcpuverify.symbolic.setup import PostedSetup, RoundUpSetup
from pcpuverify.symbolic.subjects import SUBJECTS, subject

PAGE = 4096
OPTIONS = SolverOptions(rlimit=400_000_000, seed=0, timeout=120.0)

V, P = Verdict.VIOLATED, Verdict.PROVED

# property -> (verdict under "setup" = (a), verdict under "callers" = (b)) at PAGE_SIZE 4096
EXPECTED: dict[str, tuple[Verdict | None, Verdict]] = {
    "align-reserved-region-ends-page-aligned": (P, P),
    "align-reserved-region-never-shrinks": (V, V),
    "align-reserved-region-adds-under-a-page": (V, V),
    "align-reserved-region-pfn-align-no-wrap": (V, V),
    "align-reserved-region-no-overflow": (V, V),
    "build-alloc-info-size-sum-no-wrap": (None, V),  # only where the caller runs
    "setup-size-sum-no-wrap": (V, V),
    "reserved-offset-below-page": (P, P),
    "reserved-offset-aligned": (V, V),
    "first-chunk-static-region-not-allocatable": (V, V),
    "dyn-chunk-static-region-not-allocatable": (V, V),
    "first-chunk-pages-cover-region": (V, P),  # (b): pcpu_build_alloc_info page-aligns size_sum
    "dyn-chunk-pages-cover-region": (V, P),
    "first-chunk-inside-its-region": (P, P),
    "dyn-chunk-starts-at-reserved-end": (V, V),
    "dyn-chunk-inside-its-region": (P, P),
    "dyn-chunk-disjoint-from-first-chunk": (P, P),
    "chunks-inside-unit": (V, V),
    "first-chunk-begin-fill-inside-bitmap": (V, V),
    "chunk-sizes-whole-blocks": (V, V),
    "bitmap-int-arithmetic-no-overflow": (V, V),
    "unit-int-arithmetic-no-overflow": (V, V),
}


@pytest.fixture(scope="module")
def suite() -> dict[tuple[str, str], Result]:
    results = run_layout_suite(PAGE, OPTIONS, sets=("setup", "callers"), conformance_layouts=60)
    return {(r.extra["preconditions"], r.invariant): r for r in results}


# -- plain Python, 64-bit wraparound -------------------------------------------------

M = 1 << 64
EARLY = 12 << 10
MIN_UNIT = 32 << 10


def u(x: int) -> int:
    return x % M


def c_int(x: int) -> int:
    """(int) of an unsigned long: the low 32 bits, signed."""
    x %= 1 << 32
    return x - (1 << 32) if x >= 1 << 31 else x


def pfn_align(x: int) -> int:
    return u(u(x) + PAGE - 1) & ~(PAGE - 1) & (M - 1)


def align_reserved(s: int, q: int) -> int:
    return 0 if q == 0 else u(pfn_align(s + q) - s)


@dataclasses.dataclass
class PyChunk:
    exact_pages: int
    chunk_pages: int  # int
    nr_bits: int  # int
    nr_blocks: int  # int
    free_bits: int  # int
    start: int  # first allocatable byte
    length: int  # allocatable bytes


def py_chunk(base: int, exact_pages: int, bfb: int) -> PyChunk:
    pages = c_int(exact_pages)
    widened = u(pages) << 12 & (M - 1)  # (unsigned long)(int) * PAGE_SIZE
    nr_bits = c_int(widened >> 2)
    nr_blocks = c_int((widened >> 2) // (PAGE >> 2))
    free_bits = c_int(u(nr_bits) - bfb)
    length = 4 * (nr_bits - bfb) if nr_bits > bfb else 0
    return PyChunk(exact_pages, pages, nr_bits, nr_blocks, free_bits, u(base + 4 * bfb), length)


def py_layout(v: dict[str, int]) -> dict[str, object]:
    """pcpu_setup_first_chunk's metadata arithmetic, transcribed from the C (seed 3227-3346)."""
    s, r, d, base = v["static_size"], v["reserved_size"], v["dyn_size"], v["base_addr"]
    tmp = u(base + s)
    aligned = tmp & ~(PAGE - 1) & (M - 1)
    off = u(tmp - aligned)
    bfb = off // 4
    map_size = u((r if r else d) + off)
    first = py_chunk(aligned, map_size >> 12, bfb)
    dyn = py_chunk(u(base + s + r), d >> 12, 0)
    return {"off": off, "bfb": bfb, "map": map_size, "aligned": aligned, "first": first, "dyn": dyn}


def setup_accepts(v: dict[str, int]) -> bool:
    s, r, d, unit, base = v["static_size"], v["reserved_size"], v["dyn_size"], v["unit_size"], v["base_addr"]
    return (
        s != 0
        and base != 0
        and base % PAGE == 0
        and unit >= u(s + r + d)
        and unit % PAGE == 0
        and unit >= MIN_UNIT
        and not (r and u(s + r) % PAGE)
        and d >= EARLY
    )


def callers_accept(v: dict[str, int]) -> bool:
    s, q, dq = v["static_size"], v["req_reserved_size"], v["req_dyn_size"]
    r = align_reserved(s, q)
    size_sum = pfn_align(u(s + r + max(dq, EARLY)))
    min_unit = max(size_sum, MIN_UNIT)
    return (
        setup_accepts(v)
        and v["reserved_size"] == r
        and v["dyn_size"] == u(size_sum - s - r)
        and min_unit <= v["unit_size"] < 2 * min_unit
        and v["base_addr"] + v["unit_size"] < M
        and s <= v["unit_size"]
    )


def in_range(addr: int, start: int, length: int) -> bool:
    return u(addr - start) < length


def overlaps(a: int, n: int, b: int, m: int) -> bool:
    if not n or not m:
        return False
    return in_range(b, a, n) or in_range(a, b, m)


def inside(outer: int, m: int, inner: int, n: int) -> bool:
    return n == 0 or (u(inner - outer) <= m and n <= m - u(inner - outer))


def py_broken(name: str, v: dict[str, int]) -> bool:
    """Does the property fail for these values, computed in plain Python?"""
    s, r, d, unit, base = v["static_size"], v["reserved_size"], v["dyn_size"], v["unit_size"], v["base_addr"]
    q, dq = v["req_reserved_size"], v["req_dyn_size"]
    L = py_layout(v)
    first, dyn = L["first"], L["dyn"]
    assert isinstance(first, PyChunk) and isinstance(dyn, PyChunk)
    chunks = [first] + ([dyn] if r else [])
    ra = align_reserved(s, q)
    if name == "align-reserved-region-never-shrinks":
        return q != 0 and ra < q
    if name == "align-reserved-region-adds-under-a-page":
        return q != 0 and not (q <= ra < q + PAGE)
    if name == "align-reserved-region-pfn-align-no-wrap":
        return q != 0 and u(s + q) + PAGE - 1 >= M
    if name == "align-reserved-region-no-overflow":
        half = 1 << 63
        return q != 0 and (s >= half or q >= half or s + q >= half or ra >= half)
    if name == "build-alloc-info-size-sum-no-wrap":
        return s + ra + max(dq, EARLY) + PAGE - 1 >= M
    if name == "setup-size-sum-no-wrap":
        return s + r + d >= M
    if name == "reserved-offset-aligned":
        return L["off"] % 4 != 0
    if name == "first-chunk-static-region-not-allocatable":
        return overlaps(base, s, first.start, first.length)
    if name == "dyn-chunk-static-region-not-allocatable":
        return bool(r) and overlaps(base, s, dyn.start, dyn.length)
    if name == "first-chunk-pages-cover-region":
        return L["map"] % PAGE != 0
    if name == "dyn-chunk-pages-cover-region":
        return bool(r) and d % PAGE != 0
    if name == "dyn-chunk-starts-at-reserved-end":
        return bool(r) and u(base + s + r) != u(L["aligned"] + first.chunk_pages * PAGE)
    if name == "chunks-inside-unit":
        return any(not inside(base, unit, c.start, c.length) for c in chunks)
    if name == "first-chunk-begin-fill-inside-bitmap":
        return first.nr_bits < L["bfb"] or first.free_bits < 0
    if name == "chunk-sizes-whole-blocks":
        return any(c.nr_blocks * (PAGE >> 2) != c.nr_bits for c in chunks)
    if name == "bitmap-int-arithmetic-no-overflow":
        return any(c.exact_pages * PAGE > 1 << 31 or c.nr_bits != c.exact_pages * (PAGE >> 2) for c in chunks)
    if name == "unit-int-arithmetic-no-overflow":
        return (unit >> 12 << 12) > (1 << 31) - 1
    raise AssertionError(f"no plain-Python check for {name}")


# -- the verdict table -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("set_name", ["setup", "callers"])
@pytest.mark.slow
def test_verdict(suite: dict[tuple[str, str], Result], name: str, set_name: str) -> None:
    expected = EXPECTED[name][0 if set_name == "setup" else 1]
    if expected is None:
        assert (set_name, name) not in suite
        return
    result = suite[(set_name, name)]
    assert result.verdict is expected, result.detail
    assert result.geometry == f"page4096/{set_name}" and result.op == "layout" and result.variant == "v1"
    # the statement of which inputs break it was itself proved (slow "only-if" ones are left out here)
    assert result.extra["breaks_when_verdict"] in ("PROVED", "NOT-CHECKED"), result.extra
    if expected is P:
        assert result.extra["breaks_when"] == "never"


@pytest.mark.slow
def test_every_property_has_an_expectation(suite: dict[tuple[str, str], Result]) -> None:
    assert set(EXPECTED) == set(LAYOUT_PROPERTIES)
    assert {name for _, name in suite} == set(LAYOUT_PROPERTIES)


@pytest.mark.parametrize("name", sorted(n for n, (a, b) in EXPECTED.items() if V in (a, b)))
@pytest.mark.slow
def test_counterexample_breaks_the_property_in_plain_python(
    suite: dict[tuple[str, str], Result], name: str
) -> None:
    for set_name, accepts in (("setup", setup_accepts), ("callers", callers_accept)):
        result = suite.get((set_name, name))
        if result is None or result.verdict is not V:
            continue
        v = result.extra["counterexample"]
        assert all(0 <= v[k] < M for k in lay.LayoutInputs.NAMES)
        assert accepts(v), f"{set_name} counterexample not accepted in plain Python: {result.detail}"
        assert py_broken(name, v), f"{name} holds in plain Python for {result.detail}"
        # the one-line detail names the values
        assert f"static_size={_fmt(v['static_size'])}" in result.detail


@pytest.mark.slow
def test_static_overlap_counterexample_is_an_unaligned_static_size(suite: dict[tuple[str, str], Result]) -> None:
    # the finding: begin_fill_bits = pcpu_reserved_offset / PCPU_MIN_ALLOC_SIZE rounds down
    for set_name in ("setup", "callers"):
        v = suite[(set_name, "first-chunk-static-region-not-allocatable")].extra["counterexample"]
        assert v["static_size"] % 4 != 0
        assert v["begin_fill_bits"] * 4 < v["pcpu_reserved_offset"]
        first_byte = v["first.alloc_start"]
        assert v["base_addr"] <= first_byte < v["base_addr"] + v["static_size"]  # a static byte is handed out


@pytest.mark.slow
def test_truncation_needs_an_unaligned_dynamic_region(suite: dict[tuple[str, str], Result]) -> None:
    v = suite[("setup", "first-chunk-pages-cover-region")].extra["counterexample"]
    assert v["reserved_size"] == 0 and (v["static_size"] + v["dyn_size"]) % PAGE != 0
    assert v["first.exact_pages"] * PAGE < v["map_size_bytes"]  # the last partial page is lost
    assert suite[("callers", "first-chunk-pages-cover-region")].verdict is P


@pytest.mark.slow
def test_pfn_align_wrap_inputs(suite: dict[tuple[str, str], Result]) -> None:
    v = suite[("setup", "align-reserved-region-pfn-align-no-wrap")].extra["counterexample"]
    assert u(v["static_size"] + v["req_reserved_size"]) > M - PAGE
    assert pfn_align(v["static_size"] + v["req_reserved_size"]) == 0  # rounds up past 2^64 to 0


# -- other page sizes and the arch set: a few cheap obligations ---------------------------


@pytest.mark.parametrize("page_size", [16384, 65536])
def test_other_page_sizes(page_size: int) -> None:
    params = LayoutParams.kernel(page_size)
    r = prove_layout_property(LAYOUT_PROPERTIES["first-chunk-pages-cover-region"], "callers", params, OPTIONS)
    assert r.verdict is P and r.geometry == f"page{page_size}/callers"
    r = prove_layout_property(LAYOUT_PROPERTIES["reserved-offset-aligned"], "setup", params, OPTIONS)
    assert r.verdict is V and r.extra["counterexample"]["static_size"] % 4 != 0


def test_arch_arguments_rule_out_the_reserved_wraps() -> None:
    params = LayoutParams.kernel(PAGE)
    for name in ("align-reserved-region-pfn-align-no-wrap", "dyn-chunk-static-region-not-allocatable"):
        assert prove_layout_property(LAYOUT_PROPERTIES[name], "arch", params, OPTIONS).verdict is P
    r = prove_layout_property(LAYOUT_PROPERTIES["first-chunk-static-region-not-allocatable"], "arch", params, OPTIONS)
    assert r.verdict is V and r.extra["counterexample"]["static_size"] % 4 != 0


def test_fixed_variant_hides_the_partly_static_bit() -> None:
    params = LayoutParams.kernel(PAGE, variant="fixed")
    r = prove_layout_property(LAYOUT_PROPERTIES["first-chunk-static-region-not-allocatable"], "arch", params, OPTIONS)
    assert r.verdict is P, r.detail and r.variant == "fixed"


# -- plug-ins: a subject's setup code is found by what it is, never by its name ----------------------


class PatchOnFixed(Fixed):
    """A patch on ``fixed`` that leaves pcpu_setup_first_chunk alone."""

    variant = "patch-on-fixed"


class SymPatchOnFixed(SymFixed):
    pass


class TruncatingAgain(Fixed):
    """A patch on ``fixed`` that changes pcpu_setup_first_chunk back to PATCH 09's truncation."""

    variant = "truncating-again"

    def pcpu_begin_fill_bits(self, pcpu_reserved_offset: int) -> int:
        return pcpu_reserved_offset // 4


def test_a_patch_on_fixed_keeps_fixed_setup_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the registry, every layout row of such a plug-in was NONCONFORMANT (the code tested the name)."""
    register_for_test(monkeypatch, "patch-on-fixed", PatchOnFixed, SymPatchOnFixed)
    assert subject("patch-on-fixed").parent == "fixed" and subject("patch-on-fixed").layout is RoundUpSetup
    assert cross_check(32, 60, seed=0, variant="patch-on-fixed") == []
    params = LayoutParams.kernel(PAGE, variant="patch-on-fixed")
    r = prove_layout_property(LAYOUT_PROPERTIES["first-chunk-static-region-not-allocatable"], "arch", params, OPTIONS)
    assert r.verdict is P and r.variant == "patch-on-fixed", r.detail


def test_a_change_to_the_setup_code_plugs_in_as_a_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A patch to pcpu_setup_first_chunk brings its symbolic lines; with fixed's, conformance catches it."""
    register_for_test(monkeypatch, "truncating-again", TruncatingAgain, SymPatchOnFixed)
    mismatches = cross_check(32, 100, seed=0, variant="truncating-again")
    assert mismatches and "begin_fill_bits" in " ".join(mismatches)
    monkeypatch.setitem(SUBJECTS, "truncating-again", replace(subject("truncating-again"), layout=PostedSetup))
    assert cross_check(32, 100, seed=0, variant="truncating-again") == []
    params = LayoutParams.kernel(PAGE, variant="truncating-again")
    r = prove_layout_property(LAYOUT_PROPERTIES["first-chunk-static-region-not-allocatable"], "arch", params, OPTIONS)
    assert r.verdict is V, r.detail


# -- vacuity and the verdicts that are failures of ours -------------------------------------


@pytest.mark.parametrize("set_name", list(lay.PRECONDITION_SETS))
def test_preconditions_are_satisfiable(set_name: str) -> None:
    L = lay.layout_of(lay.LayoutInputs.fresh(), LayoutParams.kernel(PAGE))
    answer = check(lay.preconditions(L, set_name), OPTIONS)
    assert answer.status == "sat"


def test_unsatisfiable_case_is_vacuous_not_proved() -> None:
    prop = dataclasses.replace(LAYOUT_PROPERTIES["reserved-offset-below-page"], guard=lambda L: z3.BoolVal(False))
    r = prove_layout_property(prop, "setup", LayoutParams.kernel(PAGE), OPTIONS)
    assert r.verdict is Verdict.VACUOUS


def test_resource_limit_is_unknown_never_proved() -> None:
    tiny = SolverOptions(rlimit=1, seed=0, timeout=10.0)
    r = prove_layout_property(
        LAYOUT_PROPERTIES["dyn-chunk-disjoint-from-first-chunk"], "setup", LayoutParams.kernel(PAGE), tiny
    )
    assert r.verdict is Verdict.UNKNOWN


# -- conformance: the encoding against model/first_chunk ------------------------------------


@pytest.mark.parametrize("variant", ["v1", "fixed"])
def test_encoding_conforms_to_the_model(variant: str) -> None:
    assert cross_check(32, 300 if variant == "v1" else 120, seed=0, variant=variant) == []


def test_cross_check_catches_a_wrong_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    # round begin_fill_bits up in the encoding only: the v1 model must disagree
    monkeypatch.setattr(
        lay.encoding, "pcpu_begin_fill_bits", lambda off, p: z3.LShR(off + lay.ulong(3), 2)
    )
    mismatches = cross_check(32, 100, seed=0, variant="v1")
    assert mismatches and "begin_fill_bits" in " ".join(mismatches)


def test_nonconformant_encoding_proves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lay.prove, "cross_check", lambda *a, **k: ["layout 0: made up"])
    results = run_layout_suite(PAGE, OPTIONS, sets=("setup",))
    assert results and all(r.verdict is Verdict.NONCONFORMANT for r in results)


def test_concrete_evaluation_matches_plain_python() -> None:
    # the same formulas evaluated on 64-bit values, including wraps and int truncation
    cases = [
        dict(static_size=1, reserved_size=0, dyn_size=12288, unit_size=32768, base_addr=4096),
        dict(static_size=4100, reserved_size=12284, dyn_size=20480, unit_size=36864, base_addr=1 << 40),
        dict(static_size=1, reserved_size=(1 << 43) - 1, dyn_size=12288, unit_size=1 << 44, base_addr=4096),
        dict(static_size=M - 40959, reserved_size=12287, dyn_size=28672, unit_size=M - 36864, base_addr=4096),
        dict(static_size=3, reserved_size=0, dyn_size=(1 << 33) - 1, unit_size=1 << 33, base_addr=8192),
    ]
    for values in cases:
        enc = evaluate_layout(LayoutParams.kernel(PAGE), **values)
        py = py_layout({**values, "req_reserved_size": 0, "req_dyn_size": 0})
        first, dyn = py["first"], py["dyn"]
        assert isinstance(first, PyChunk) and isinstance(dyn, PyChunk)
        assert (enc["pcpu_reserved_offset"], enc["begin_fill_bits"], enc["map_size_bytes"]) == (
            py["off"], py["bfb"], py["map"]
        )
        for role, c in (("first", first), ("dyn", dyn)):
            assert enc[f"{role}.chunk_pages"] == c.chunk_pages
            assert enc[f"{role}.nr_bits"] == c.nr_bits
            assert enc[f"{role}.nr_blocks"] == c.nr_blocks
            assert enc[f"{role}.free_bits"] == c.free_bits
            assert enc[f"{role}.alloc_start"] == c.start
            assert enc[f"{role}.alloc_len"] == c.length


def test_bad_page_size_says_what_to_use() -> None:
    with pytest.raises(ValueError, match="power of two"):
        LayoutParams.kernel(3000)
