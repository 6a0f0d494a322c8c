"""Running the layout obligations.

Vacuity, the proof, the characterisation of breaking inputs, a small counterexample."""

from __future__ import annotations

import time
from collections.abc import Iterable

import z3

from pcpuverify.proofs.layout.conformance import cross_check
from pcpuverify.proofs.layout.encoding import (
    BITS_PER_LONG,
    BV,
    INT_BITS,
    Bool,
    LayoutInputs,
    LayoutParams,
    SymLayout,
    layout_of,
    ulong,
)
from pcpuverify.proofs.layout.preconditions import preconditions
from pcpuverify.proofs.layout.properties import LAYOUT_PROPERTIES, LayoutProperty
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.backends import z3_check
from pcpuverify.proofs.solver import SolverOptions, check

# -- running the obligations -----------------------------------------------------------

# Counterexamples are minimised variable by variable in this order (lexicographically).
_MINIMIZE_ORDER = (
    "static_size",
    "req_reserved_size",
    "reserved_size",
    "req_dyn_size",
    "dyn_size",
    "unit_size",
    "base_addr",
)


def _fmt(v: int) -> str:
    if v < 1 << 32:
        return str(v)
    if v >= (1 << 64) - (1 << 32):
        return f"2^64-{(1 << 64) - v}"
    return hex(v)


def _model_values(model: z3.ModelRef, L: SymLayout) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, term in L.values().items():
        v = model.eval(term, model_completion=True)
        n = v.as_long()
        if v.size() == INT_BITS and n >= 1 << (INT_BITS - 1):
            n -= 1 << INT_BITS  # C ints print signed
        out[name] = n
    return out


def _describe(values: dict[str, int], prop: LayoutProperty, set_name: str) -> str:
    if prop.reads_request and set_name == "setup":
        inputs = ["static_size", "req_reserved_size"]
    elif set_name == "setup":
        inputs = ["static_size", "reserved_size", "dyn_size", "unit_size", "base_addr"]
    else:
        inputs = ["static_size", "req_reserved_size", "req_dyn_size", "reserved_size", "dyn_size", "unit_size",
                  "base_addr"]
    label = {"req_reserved_size": "reserved_size(asked)", "req_dyn_size": "dyn_size(asked)"}
    if set_name != "setup":
        label.update({"reserved_size": "ai.reserved_size", "dyn_size": "ai.dyn_size"})
    head = ", ".join(f"{label.get(n, n)}={_fmt(values[n])}" for n in inputs)
    derived = [n for n in prop.shows if n in values]
    if prop.reads_request:
        derived = ["align_result", *derived]
    tail = ", ".join(f"{n}={_fmt(values[n]) if values[n] >= 0 else values[n]}" for n in derived)
    return head + (f" -> {tail}" if tail else "")


# A minimisation probe's resource limit (about half a second here): probes only make a
# counterexample smaller, so a probe that runs out just ends the search, deterministically.
_PROBE_RLIMIT = 1_000_000
_PROBE_BUDGET = 20  # probes per variable; values near 2^64 may stay a little above their minimum


def _minimize(assertions: list[Bool], L: SymLayout, options: SolverOptions) -> tuple[z3.ModelRef | None, float]:
    """The lexicographically smallest model in ``_MINIMIZE_ORDER``; None if the solver gives up on the first check.

    One incremental solver; per variable: the smallest bit length (binary
    search on the exponent, which also tries 0), then the smallest value of
    that length (binary search, each sat answer jumping to the model's
    value).  Probes have a small rlimit (``_PROBE_RLIMIT``) and there are at
    most ``_PROBE_BUDGET`` per variable; an ``unknown`` or an exhausted budget
    keeps the model found so far -- a counterexample, maybe not the
    smallest, and the same one on every machine.
    """
    start = time.perf_counter()
    solver = z3.SolverFor("QF_BV")
    solver.set("rlimit", options.rlimit)
    solver.set("random_seed", options.seed)
    solver.set("timeout", int(options.timeout * 1000))
    solver.add(*assertions)
    if z3_check(solver) != z3.sat:
        return None, time.perf_counter() - start
    model = solver.model()
    # Probes are a nicety: each gets a small share of the budget, and an unknown just stops the search.
    solver.set("rlimit", min(options.rlimit, _PROBE_RLIMIT))

    def value(var: BV) -> int:
        return model.eval(var, model_completion=True).as_long()

    probes = 0

    def probe(condition: Bool) -> str:
        nonlocal model, probes
        probes += 1
        if probes > _PROBE_BUDGET:
            return "unknown"
        solver.push()
        solver.add(condition)
        status = z3_check(solver)
        if status == z3.sat:
            model = solver.model()
        solver.pop()
        return "sat" if status == z3.sat else "unsat" if status == z3.unsat else "unknown"

    for name in _MINIMIZE_ORDER:
        var = getattr(L.x, name)
        probes = 0
        hi = value(var)
        lo = 0
        # the bit length first: few checks even for values near 2^64
        klo, khi = 0, hi.bit_length()
        while klo < khi:
            k = (klo + khi) // 2
            status = probe(z3.ULT(var, ulong(1 << k)) if k < BITS_PER_LONG else z3.BoolVal(True))
            if status == "sat":
                hi = value(var)
                khi = hi.bit_length()
            elif status == "unsat":
                klo = k + 1
            else:
                break
        lo = (1 << (klo - 1)) if klo > 0 else 0
        while lo < hi:
            mid = (lo + hi) // 2
            status = probe(z3.ULE(var, ulong(mid)))
            if status == "sat":
                hi = value(var)
            elif status == "unsat":
                lo = mid + 1
            else:
                break
        solver.add(var == ulong(hi))  # ``model`` (the last sat answer) already has var == hi
    return model, time.perf_counter() - start


def prove_layout_property(
    prop: LayoutProperty,
    set_name: str,
    params: LayoutParams,
    options: SolverOptions,
    thorough: bool = False,
) -> Result:
    """One obligation: ``preconditions(set_name) and not prop`` over 64-bit values.

    Then the characterisation of the breaking inputs, if the property has
    one for this set (``thorough`` includes the slow ones).  A PROVED
    property breaks "never" -- that is the PROVED itself.
    """
    L = layout_of(LayoutInputs.fresh(), params)
    pre = preconditions(L, set_name)
    extra: dict[str, object] = {"preconditions": set_name}

    def result(verdict: Verdict, seconds: float, detail: str = "") -> Result:
        return Result(params.variant, f"{params.geometry}/{set_name}", prop.name, "layout", verdict, seconds, detail,
                      extra=extra)

    vac = check([*pre, prop.guard(L)], options)
    if vac.status == "unknown":
        return result(Verdict.UNKNOWN, vac.seconds, f"vacuity check: {vac.reason}")
    if vac.status == "unsat":
        return result(
            Verdict.VACUOUS, vac.seconds, f"the {set_name} preconditions admit no case this property is about"
        )
    seconds = vac.seconds

    answer = check([*pre, z3.Not(prop.holds(L))], options)
    seconds += answer.seconds
    if answer.status == "unknown":
        return result(Verdict.UNKNOWN, seconds, answer.reason)

    char = prop.breaks.get(set_name) if params.setup.characterised else None
    if answer.status == "unsat":
        extra.update(breaks_when="never", breaks_when_kind="iff", breaks_when_verdict="PROVED")
    elif char is not None:
        extra.update(breaks_when=char.text, breaks_when_kind=char.kind, breaks_when_verdict="NOT-CHECKED")
        if thorough or not char.slow:  # slow ones take minutes: only when asked
            broken = z3.Not(prop.holds(L))
            claim = broken != char.condition(L) if char.kind == "iff" else z3.And(broken, z3.Not(char.condition(L)))
            exact = check([*pre, claim], options)
            seconds += exact.seconds
            extra["breaks_when_verdict"] = {"unsat": "PROVED", "sat": "VIOLATED", "unknown": "UNKNOWN"}[exact.status]

    if answer.status == "unsat":
        return result(Verdict.PROVED, seconds)

    model, min_seconds = _minimize([*pre, z3.Not(prop.holds(L))], L, options)
    seconds += min_seconds
    if model is None:  # the minimiser's solver gave up where check() did not: use check()'s model
        model = answer.model
    assert model is not None
    values = _model_values(model, L)
    values["align_result"] = values["build_reserved_size"]
    extra["counterexample"] = values
    return result(Verdict.VIOLATED, seconds, _describe(values, prop, set_name))


def run_layout_suite(
    page_size: int,
    options: SolverOptions,
    *,
    variant: str = "v1",
    sets: Iterable[str] = ("setup", "callers", "arch"),
    params: LayoutParams | None = None,
    conformance_layouts: int = 120,
    thorough: bool = False,
) -> list[Result]:
    """Every layout property under every precondition set, at one page size (kernel constants by default).

    Conformance first: the encoding, evaluated on concrete layouts, must
    agree with ``model/first_chunk`` (checked with the model's scaled
    constants at this page size and at 32 bytes).  If it does not, every
    result is NONCONFORMANT.
    """
    params = params or LayoutParams.kernel(page_size, variant=variant)
    sets = tuple(sets)
    start = time.perf_counter()
    mismatches = cross_check(32, conformance_layouts, options.seed, variant=params.variant)
    if not mismatches and page_size != 32:
        mismatches = cross_check(
            page_size, max(conformance_layouts // 6, 1), options.seed, max_pages=4, variant=params.variant
        )
    conformance_seconds = time.perf_counter() - start
    results: list[Result] = []
    for set_name in sets:
        for prop in LAYOUT_PROPERTIES.values():
            if set_name not in prop.sets:
                continue
            if mismatches:
                results.append(
                    Result(params.variant, params.geometry, prop.name, "layout", Verdict.NONCONFORMANT,
                           conformance_seconds, mismatches[0], extra={"preconditions": set_name})
                )
                continue
            results.append(prove_layout_property(prop, set_name, params, options, thorough))
    return results
