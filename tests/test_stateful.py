"""Stateful exploration of the reference: which invariants each variant of the seed's code breaks.

The machines are ``pcpuverify.counterexamples.stateful``'s: a Hypothesis
``RuleBasedStateMachine`` drives ``Reference`` with the operations a caller
of the allocator issues and checks every invariant after every step.

``v1`` and ``v1-patch09`` are the seed's code and break several of the
seed's own claims (DESIGN.md: "If the seed's code breaks a claim, that is
the finding").  So the machine does not assert the invariants: it *records*
every broken invariant with the shortest operation sequence that showed it
(a ``pcpu-verify-trace/1`` counterexample).

It starts over from a fresh chunk when the state itself went wrong -- a
state invariant broke, or a write left its bitmap -- since what follows
is a consequence of that first violation, not a finding of its own.  A
step that broke only step invariants and wrote nothing out of bounds (an
out-of-bounds *read* of PATCH 10's search window, an atomic allocation on
an unpopulated page) leaves a state the state invariants accept, and the
walk goes on: on ``v1`` nearly every allocation reaching the last page
reads past the bitmap, and stopping there would hide the PATCH 09 bugs
behind it.  So a counterexample's earlier steps may break step invariants.

The tests hold each variant to ``KNOWN_BROKEN``, the manifest of expected
results (as the TLA+ examples ship theirs): an invariant that newly breaks
fails, and so does a known one that the fixed, seeded budget no longer
finds.  Every other invariant must hold on every step explored.

``PCPU_SAVE_TRACES=1 pytest tests/test_stateful.py`` writes the shortest
counterexample of every broken invariant to
``tests/traces/found/<variant>__<invariant>.json``; each must replay with
``pcpu-verify replay``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest

from pcpuverify.counterexamples.stateful import (
    ALL_INVARIANTS,
    EXAMPLES,
    GEOMETRIES,
    SEED,
    STEPS,
    Findings,
    counterexample_walk,
    run_machines,
)
from pcpuverify.invariants.check import first_violation
from pcpuverify.model.trace import load_trace, save_trace

# every test here reads the machines' exploration of a variant: tens of seconds each
pytestmark = pytest.mark.slow

FOUND_DIR = Path(__file__).parent / "traces" / "found"

VARIANTS = ("v1", "v1-patch09", "fixed")

# The manifest: what each variant is known to break within the machines' budget (EXAMPLES x STEPS, SEED).
KNOWN_BROKEN: dict[str, frozenset[str]] = {
    "v1": frozenset(
        {
            "alloc-returns-aligned-free-offset",
            "allocations-on-populated-pages",
            "bitmap-access-in-bounds",
            "chunk-contig-hint-exact-below-a-block",
            "chunk-contig-hint-not-above-free-run",
            "chunk-contig-hint-region-free",
            "nr-empty-pop-pages-matches-bitmap",
            "pop-only-alloc-on-populated-pages",
        }
    ),
    "v1-patch09": frozenset(
        {
            "allocations-on-populated-pages",
            "chunk-contig-hint-exact-below-a-block",
            "chunk-contig-hint-not-above-free-run",
            "chunk-contig-hint-region-free",
            "nr-empty-pop-pages-matches-bitmap",
            "pop-only-alloc-on-populated-pages",
        }
    ),
    # v1 plus the smallest fix for each finding: nothing may break
    "fixed": frozenset(),
}


@cache
def explore(variant: str) -> Findings:
    """Run the machine on every geometry with the fixed, seeded budget."""
    findings = run_machines(variant)
    if os.environ.get("PCPU_EXPLORE_REPORT") == "1":
        print(f"\n{variant}: {findings.examples} examples, {findings.steps} steps, {findings.seconds:.1f}s")
        print(findings.report())
    return findings


def _budget() -> str:
    return f"seed {SEED}, {EXAMPLES} examples x {STEPS} steps on each of {len(GEOMETRIES)} geometries"


# -- (a) the broken set is the manifest -------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_broken_invariants_match_manifest(variant: str) -> None:
    findings = explore(variant)
    if os.environ.get("PCPU_SAVE_TRACES") == "1":
        save_found(findings)
    found = set(findings.shortest)
    new = sorted(found - KNOWN_BROKEN[variant])
    lost = sorted(KNOWN_BROKEN[variant] - found)
    assert not new and not lost, (
        f"{variant} ({_budget()}): newly broken {new}, no longer found {lost}; update KNOWN_BROKEN"
        f" only for a change of the model or of an invariant, never to make this pass.\n"
        f"found:\n{findings.report()}"
        + "".join(f"\n{name}: {json.dumps(findings.shortest[name].to_json())}" for name in new)
    )


# -- (b) every other invariant holds on every step explored --------------------------


@pytest.mark.parametrize(
    ("variant", "invariant"),
    [(v, name) for v in VARIANTS for name in ALL_INVARIANTS if name not in KNOWN_BROKEN[v]],
)
def test_invariant_holds_on_every_step(variant: str, invariant: str) -> None:
    findings = explore(variant)
    trace = findings.shortest.get(invariant)
    assert trace is None, (
        f"{invariant} is broken on {variant} by {len(trace.ops)} ops ({_budget()});"
        f" PCPU_SAVE_TRACES=1 saves it, or replay this trace:\n{json.dumps(trace.to_json())}"
    )


# -- the saved counterexamples ---------------------------------------------------------


def save_found(findings: Findings) -> None:
    """Write the variant's shortest counterexamples and remove those of invariants it no longer breaks."""
    FOUND_DIR.mkdir(parents=True, exist_ok=True)
    for old in FOUND_DIR.glob(f"{findings.variant}__*.json"):
        if old.stem.split("__", 1)[1] not in findings.shortest:
            old.unlink()
    for name, trace in sorted(findings.shortest.items()):
        save_trace(trace, FOUND_DIR / f"{findings.variant}__{name}.json")


@pytest.mark.parametrize("path", sorted(FOUND_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_saved_trace_breaks_its_invariant_at_its_last_step(path: Path) -> None:
    trace = load_trace(path)
    variant, invariant = path.stem.split("__", 1)
    assert (trace.variant, trace.violates) == (variant, invariant)
    assert invariant in KNOWN_BROKEN[variant], f"{path.name}: {invariant} is not known broken on {variant}"
    walk = counterexample_walk(trace)
    assert walk is not None and walk.end == len(trace.ops) - 1
    assert first_violation(trace, invariant) == len(trace.ops) - 1
