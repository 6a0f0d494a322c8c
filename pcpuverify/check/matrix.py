"""The rows a suite owes: every (invariant, operation) the configured filters select."""

from __future__ import annotations

from pcpuverify.check.outcomes import LAYOUT_PAGE_SIZE, LAYOUT_SETS
from pcpuverify.invariants.check import STATE_INVARIANTS, STEP_INVARIANTS, invariants_for
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


def layout_geometry(set_name: str) -> str:
    return f"page{LAYOUT_PAGE_SIZE}/{set_name}"


def layout_rows(properties: frozenset[str] | None = None) -> list[tuple[str, str]]:
    """Every (geometry, property) row ``run_layout_suite`` reports (``properties``: only those), in its order.

    Derived from ``LAYOUT_PROPERTIES`` and each property's ``sets``: a
    property added to proofs/layout.py is owed without a change here.
    """
    return [(layout_geometry(set_name), name) for set_name in LAYOUT_SETS
            for name, prop in LAYOUT_PROPERTIES.items()
            if set_name in prop.sets and (properties is None or name in properties)]
