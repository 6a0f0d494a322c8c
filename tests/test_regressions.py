"""Every finding of the gallery, kept forever: the violation on the seed's code, its absence on ``fixed``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcpuverify.invariants.check import first_violation
from pcpuverify.model.trace import Trace, load_trace

GALLERY = Path(__file__).parent / "traces" / "gallery"
TRACES = sorted(GALLERY.glob("*.json"))


def test_the_gallery_has_every_finding() -> None:
    names = {p.name for p in TRACES}
    for variant in ("v1", "v1-patch09"):
        for inv in ("chunk-contig-hint-not-above-free-run", "chunk-contig-hint-exact-below-a-block",
                    "nr-empty-pop-pages-matches-bitmap", "pop-only-alloc-on-populated-pages",
                    "static-overlap-hidden"):
            assert f"{variant}__{inv}.json" in names
    assert "v1__bitmap-access-in-bounds.json" in names


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_violated_on_its_variant_at_its_last_step(path: Path) -> None:
    trace = load_trace(path)
    assert trace.violates is not None
    assert first_violation(trace, trace.violates) == len(trace.ops) - 1


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_absent_on_fixed(path: Path) -> None:
    trace = load_trace(path)
    on_fixed = Trace("fixed", trace.geometry, trace.init, trace.ops, trace.violates)
    assert trace.violates is not None
    assert first_violation(on_fixed, trace.violates) is None
