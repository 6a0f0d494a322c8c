"""The two routes to a shortest counterexample agree: exhaustive search of model/ and the solver's bounded check."""

from __future__ import annotations

import pytest

from pcpuverify.counterexamples.explore import explore
from pcpuverify.proofs.shortest import shortest_on
from pcpuverify.invariants.check import INVARIANTS, first_violation
from pcpuverify.model.geometry import Geometry

DEPTH = 3
ONE_BLOCK = Geometry(4, 1, ())
# invariants that hold on one block within DEPTH: the solver must not find them broken either
HOLDING = ("block-hints-match-scan", "free-bits-count", "bound-map-marks-allocations")


@pytest.mark.parametrize("variant", ["v1", "v1-patch09"])
@pytest.mark.slow
def test_explorer_and_bounded_check_agree_on_every_shortest_length(variant: str) -> None:
    exploration = explore(variant, ONE_BLOCK, DEPTH)
    assert exploration.complete
    assert exploration.shortest, "the seed's code breaks invariants on one block"
    for inv in INVARIANTS:
        if inv.z3 is None or (inv.name not in exploration.shortest and inv.name not in HOLDING):
            continue
        by_search = exploration.shortest.get(inv.name)
        by_solver = shortest_on(variant, ONE_BLOCK, inv.name, DEPTH)
        lengths = (None if by_search is None else len(by_search.ops),
                   None if by_solver is None else by_solver.depth)
        assert lengths[0] == lengths[1], (inv.name, lengths)
        if by_solver is not None:
            assert first_violation(by_solver.trace, inv.name) == by_solver.depth - 1


def test_explorer_counts_states() -> None:
    exploration = explore("v1-patch09", Geometry(8, 1, ()), 2)
    # two roots (page 0 populated or not), then every distinct state one and two ops away
    assert exploration.states_by_depth[0] == 2
    assert exploration.states == sum(exploration.states_by_depth) > 2
