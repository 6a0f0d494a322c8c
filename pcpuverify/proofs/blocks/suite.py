"""The rows of one compositional label for one variant: the block contracts, or the composed chunk obligations.

Which contracts depends on the variant's blocks (``Subject.block_contracts``): the posting's
``pcpu_bitmap_md`` (``contracts``, and ``compose`` over N blocks), or 5.2's scan_hint ``pcpu_block_md``
(``release_contracts``, and ``release_compose``: ``chunk_md`` over N blocks).
"""

from __future__ import annotations

from collections.abc import Callable

from pcpuverify.kernel.source import KernelSource
from pcpuverify.proofs.blocks.compose import CHUNK_HINT_INVARIANTS, COMPOSED_OPS, run_composed_suite
from pcpuverify.proofs.blocks.contracts import CONTRACTS
from pcpuverify.proofs.blocks.labels import BlockLabel
from pcpuverify.proofs.blocks.prove import run_block_suite
from pcpuverify.proofs.blocks.release_compose import (
    CHUNK_MD_INVARIANTS,
    RELEASE_COMPOSED_OPS,
    run_release_composed_suite,
)
from pcpuverify.proofs.blocks.release_contracts import BLOCK_INVARIANTS, release_label_rows, run_release_block_suite
from pcpuverify.proofs.results import Result
from pcpuverify.proofs.solver import SolverOptions
from pcpuverify.symbolic.subjects import subject

# what --invariant may name
ROW_NAMES = frozenset({c.name for c in CONTRACTS} | set(CHUNK_HINT_INVARIANTS) | set(BLOCK_INVARIANTS)
                      | set(CHUNK_MD_INVARIANTS))


def scan_hint_blocks(variant: str) -> bool:
    """Whether ``variant``'s block rows are 5.2's (``release_contracts``)."""
    return subject(variant).block_contracts == "5.2"


def label_rows(label: BlockLabel, variant: str, wanted: frozenset[str] | None = None) -> list[tuple[str, str]]:
    """The (invariant, op) rows a label owes for ``variant``, in the order they are proved."""
    if label.nr_blocks is not None and scan_hint_blocks(variant):
        rows = [(name, op) for op in RELEASE_COMPOSED_OPS for name in CHUNK_MD_INVARIANTS]
    elif label.nr_blocks is not None:
        rows = [(name, op) for op in COMPOSED_OPS for name in CHUNK_HINT_INVARIANTS]
    elif scan_hint_blocks(variant):
        return release_label_rows(wanted)
    else:
        rows = [(c.name, c.role.name) for c in CONTRACTS]
    return [r for r in rows if wanted is None or r[0] in wanted]


def run_label(variant: str, label: BlockLabel, options: SolverOptions, wanted: frozenset[str] | None = None,
              progress: Callable[[Result], None] | None = None, source: KernelSource | None = None) -> list[Result]:
    """The label's rows for ``variant``; ``source``: a kernel whose C replays the scan_hint releases' VIOLATED
    rows."""
    if label.nr_blocks is not None and scan_hint_blocks(variant):
        return run_release_composed_suite(variant, label.block_bits, label.nr_blocks, options, wanted, progress,
                                          source)
    if label.nr_blocks is not None:
        return run_composed_suite(variant, label.block_bits, label.nr_blocks, options, wanted, None, progress)
    if scan_hint_blocks(variant):
        return run_release_block_suite(variant, label.block_bits, options, wanted, progress, source=source)
    return run_block_suite(variant, label.block_bits, options, wanted, None, progress)
