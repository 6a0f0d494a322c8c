"""A 5.2 block seen only through its ``pcpu_block_md``: what the eleven block invariants imply of the metadata
``pcpu_next_md_free_region`` reads, and bits that realise it.

5.4's and 7.1.3's ``pcpu_next_md_free_region`` read each block's
``contig_hint``, ``contig_hint_start``, ``left_free`` and ``right_free``,
the fields 2017's ``pcpu_bitmap_md`` had, with the same meaning.  So the
abstraction is 2017's (``abstraction.consistent``: a free edge on each side,
the hint's run one of them or strictly between them, ``first_free`` not
past the hint) plus 5.2's ``nr_bits``.  The blockB row ``md-abstraction-sound``
(``release_contracts``) proves that the eleven invariants imply it, at each
width.  The scan hint is left out: the chunk scan never reads a block's.

``realise54`` is exact for the fields read: bits free on the edges and the
hint's run only, a block with no scan hint, meet every block invariant.
"""

from __future__ import annotations

import z3

from pcpuverify.model.linux_5_4 import PcpuBlockMd
from pcpuverify.proofs.blocks.abstraction import consistent, realise_runs
from pcpuverify.symbolic.bv import I
from pcpuverify.symbolic.release_state import RELEASE_BLOCK_FIELDS, SymBlockMd


def consistent54(md: SymBlockMd, B: int) -> z3.BoolRef:
    return z3.And(consistent(md, B), md.nr_bits == B)


def realise54(md: PcpuBlockMd, B: int) -> int:
    """Bits (set = allocated) free exactly on the edges and the contig hint's run that ``md`` describes."""
    return realise_runs(md.left_free, md.contig_hint_start, md.contig_hint, md.right_free, B)


def consistent54_concrete(md: PcpuBlockMd, B: int) -> bool:
    """``consistent54`` of concrete metadata (its own Z3 predicate, on constants)."""
    sym = SymBlockMd(*(I(getattr(md, f)) for f in RELEASE_BLOCK_FIELDS))
    return z3.is_true(z3.simplify(consistent54(sym, B)))
