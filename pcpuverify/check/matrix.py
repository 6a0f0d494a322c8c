"""The rows an item owes: every obligation of a suite or a layout suite the configured filters select."""

from __future__ import annotations

from pcpuverify.check.obligation import (
    LAYOUT_SETS,
    GeometrySetting,
    LayoutSetting,
    Obligation,
)
from pcpuverify.invariants.check import STATE_INVARIANTS, STEP_INVARIANTS, invariants_for
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.blocks.labels import BlockLabel
from pcpuverify.proofs.blocks.suite import label_rows
from pcpuverify.proofs.initiation import OP as FIRST_CHUNK_OP
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES
from pcpuverify.proofs.obligations import OPS
from pcpuverify.symbolic.subjects import subject


def suite_rows(invariants: frozenset[str] | None, ops: frozenset[str] | None,
               variant: str | None = None) -> list[tuple[str, str]]:
    """Every (invariant, op) row ``run_suite`` reports for these filters, in its order.

    ``variant`` picks the invariants of its encoding's chunk layout and whether it has first-chunk rows
    (the release variants: 5.2's layout, no first-chunk init); None: the 2017 chunk's, as for v1.
    """
    def wanted(name: str) -> bool:
        return invariants is None or name in invariants

    state_invs, step_invs, first_chunk = STATE_INVARIANTS, STEP_INVARIANTS, True
    if variant is not None:
        s = subject(variant)
        layout_invs = invariants_for(s.require_encoding().chunk_layout)
        state_invs = tuple(i for i in layout_invs if i.kind == "state")
        step_invs = tuple(i for i in layout_invs if i.kind == "step")
        first_chunk = s.model.ports_first_chunk
    kinds = [k for k in OPS if ops is None or k in ops]
    symbolic = [i.name for i in state_invs if i.z3 is not None and wanted(i.name)]
    rows = [(name, "init") for name in symbolic]
    rows += [(i.name, FIRST_CHUNK_OP) for i in state_invs if wanted(i.name) and first_chunk]
    rows += [(name, k) for name in symbolic for k in kinds]
    rows += [(i.name, k) for i in step_invs if wanted(i.name) for k in kinds]
    return rows


def suite_obligations(subject: str, geometry: Geometry | BlockLabel, invariants: frozenset[str] | None,
                      ops: frozenset[str] | None) -> list[Obligation]:
    """``suite_rows`` as the keys of the suite of ``subject`` on ``geometry``; a compositional label's rows
    (``proofs/blocks/``) for a label, none under an --op filter (its ops are block functions)."""
    setting = GeometrySetting(geometry)
    if isinstance(geometry, BlockLabel):
        rows = [] if ops is not None else label_rows(geometry, subject, invariants)
    else:
        rows = suite_rows(invariants, ops, subject)
    return [Obligation(subject, setting, inv, op) for inv, op in rows]


def layout_obligations(subject: str, properties: frozenset[str] | None = None) -> list[Obligation]:
    """Every obligation ``run_layout_suite`` reports for ``subject`` (``properties``: only those), in its order.

    Derived from ``LAYOUT_PROPERTIES`` and each property's ``sets``: a
    property added to proofs/layout is owed without a change here.
    """
    return [Obligation(subject, LayoutSetting(set_name), name) for set_name in LAYOUT_SETS
            for name, prop in LAYOUT_PROPERTIES.items()
            if set_name in prop.sets and (properties is None or name in properties)]
