"""The rows of one compositional label for one variant: the block contracts, or the composed chunk obligations."""

from __future__ import annotations

from collections.abc import Callable

from pcpuverify.proofs.blocks.compose import CHUNK_HINT_INVARIANTS, COMPOSED_OPS, run_composed_suite
from pcpuverify.proofs.blocks.contracts import CONTRACTS
from pcpuverify.proofs.blocks.labels import BlockLabel
from pcpuverify.proofs.blocks.prove import run_block_suite
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.solver import SolverOptions

ROW_NAMES = frozenset({c.name for c in CONTRACTS} | set(CHUNK_HINT_INVARIANTS))  # what --invariant may name


def label_rows(label: BlockLabel, wanted: frozenset[str] | None = None) -> list[tuple[str, str]]:
    """The (invariant, op) rows a label owes, in the order they are proved."""
    if label.nr_blocks is None:
        rows = [(c.name, c.role.name) for c in CONTRACTS]
    else:
        rows = [(name, op) for op in COMPOSED_OPS for name in CHUNK_HINT_INVARIANTS]
    return [r for r in rows if wanted is None or r[0] in wanted]


def run_label(variant: str, label: BlockLabel, options: SolverOptions, wanted: frozenset[str] | None = None,
              progress: Callable[[Result], None] | None = None) -> list[Result]:
    if label.nr_blocks is None:
        return run_block_suite(variant, label.block_bits, options, wanted, None, progress)
    return run_composed_suite(variant, label.block_bits, label.nr_blocks, options, wanted, None, progress)
