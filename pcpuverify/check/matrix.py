"""The rows an item owes: every obligation of a suite or a layout suite the configured filters select."""

from __future__ import annotations

from pcpuverify.check.obligation import (
    LAYOUT_SETS,
    GeometrySetting,
    LayoutSetting,
    Obligation,
)
from pcpuverify.invariants.check import STATE_INVARIANTS, STEP_INVARIANTS
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.initiation import OP as FIRST_CHUNK_OP
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES
from pcpuverify.proofs.obligations import OPS


def suite_rows(invariants: frozenset[str] | None, ops: frozenset[str] | None) -> list[tuple[str, str]]:
    """Every (invariant, op) row ``run_suite`` reports for these filters, in its order."""
    def wanted(name: str) -> bool:
        return invariants is None or name in invariants

    kinds = [k for k in OPS if ops is None or k in ops]
    symbolic = [i.name for i in STATE_INVARIANTS if i.z3 is not None and wanted(i.name)]
    rows = [(name, "init") for name in symbolic]
    rows += [(i.name, FIRST_CHUNK_OP) for i in STATE_INVARIANTS if wanted(i.name)]
    rows += [(name, k) for name in symbolic for k in kinds]
    rows += [(i.name, k) for i in STEP_INVARIANTS if wanted(i.name) for k in kinds]
    return rows


def suite_obligations(subject: str, geometry: Geometry, invariants: frozenset[str] | None,
                      ops: frozenset[str] | None) -> list[Obligation]:
    """``suite_rows`` as the keys of the suite of ``subject`` on ``geometry``."""
    setting = GeometrySetting(geometry)
    return [Obligation(subject, setting, inv, op) for inv, op in suite_rows(invariants, ops)]


def layout_obligations(subject: str, properties: frozenset[str] | None = None) -> list[Obligation]:
    """Every obligation ``run_layout_suite`` reports for ``subject`` (``properties``: only those), in its order.

    Derived from ``LAYOUT_PROPERTIES`` and each property's ``sets``: a
    property added to proofs/layout is owed without a change here.
    """
    return [Obligation(subject, LayoutSetting(set_name), name) for set_name in LAYOUT_SETS
            for name, prop in LAYOUT_PROPERTIES.items()
            if set_name in prop.sets and (properties is None or name in properties)]
