"""The check's row keys (check/obligation.py): typed settings, and the strings the reports and baseline.json use."""

from __future__ import annotations

import pytest

from pcpuverify.check.matrix import layout_obligations, suite_obligations
from pcpuverify.check.obligation import (
    LAYOUT_SETS,
    FirstChunkStart,
    GeometrySetting,
    LayoutSetting,
    Obligation,
    Replay,
    StatefulRun,
    obligation_of,
    setting_from_label,
)
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.results import Result, Verdict


def test_labels_are_the_published_strings_and_read_back() -> None:
    settings = [GeometrySetting(Geometry.parse("2x8")), LayoutSetting("callers"), StatefulRun()]
    assert [s.label for s in settings] == ["2x8", "page4096/callers", "stateful"]
    for s in settings:
        assert setting_from_label(s.label) == s
    assert Replay(FirstChunkStart()).label == "first-chunk"
    assert Replay(GeometrySetting(Geometry.parse("1x4")), known=True).label == "1x4"


def test_each_setting_owns_its_op() -> None:
    g = GeometrySetting(Geometry.parse("1x8"))
    assert Obligation("v1", g, "free-bits-count", "alloc").op == "alloc"
    assert Obligation("v1", LayoutSetting("setup"), "p").op == "layout"
    assert Obligation("v1", StatefulRun(), "i").op == "stateful"
    assert Obligation("v1", Replay(g), "i").op == "replay"
    with pytest.raises(ValueError, match="needs its operation"):
        Obligation("v1", g, "free-bits-count")
    with pytest.raises(ValueError, match="not 'alloc'"):
        Obligation("v1", LayoutSetting("setup"), "p", "alloc")
    with pytest.raises(ValueError, match="unknown precondition set"):
        LayoutSetting("nowhere")


def test_a_result_keys_the_row_it_answers() -> None:
    g = Geometry.parse("1x4")
    suite = Result("v1", "1x4", "free-bits-count", "alloc", Verdict.PROVED, 0.1)
    assert obligation_of(suite) == Obligation("v1", GeometrySetting(g), "free-bits-count", "alloc")
    assert obligation_of(suite) in suite_obligations("v1", g, None, None)
    # a NONCONFORMANT layout result names the page size only: its set is in `extra`
    for geometry in ("page4096/arch", "page4096"):
        layout = Result("v1", geometry, "p", "layout", Verdict.NONCONFORMANT, 0.1, extra={"preconditions": "arch"})
        assert obligation_of(layout) == Obligation("v1", LayoutSetting("arch"), "p")
    assert {key.setting.preconditions for key in layout_obligations("v1")} == set(LAYOUT_SETS)
