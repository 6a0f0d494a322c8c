"""The lines of ``pcpu_setup_first_chunk`` that differ between variants, over 64-bit values.

The first-chunk layout proofs (``proofs/layout``) encode the setup arithmetic
once; what a variant changes in it is a method here, chosen through the
variant's ``Subject.layout`` and never by its name.  A variant that changes
``pcpu_setup_first_chunk`` subclasses one of these, as its model subclasses
the model's.
"""

from __future__ import annotations

import z3

from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SHIFT, PCPU_MIN_ALLOC_SIZE


class PostedSetup:
    """``pcpu_setup_first_chunk`` as posted (PATCH 09): the code ``v1`` and ``v1-patch09`` run.

    ``characterised``: the layout properties' statements of which inputs
    break them (``proofs/layout/breaks.py``) are about this code; a report
    checks them only for a setup that keeps this arithmetic.
    """

    characterised = True

    @staticmethod
    def begin_fill_bits(pcpu_reserved_offset: z3.BitVecRef) -> z3.BitVecRef:
        """PATCH 09: ``begin_fill_bits = pcpu_reserved_offset / PCPU_MIN_ALLOC_SIZE`` (unsigned long)."""
        return z3.LShR(pcpu_reserved_offset, PCPU_MIN_ALLOC_SHIFT)


class RoundUpSetup(PostedSetup):
    """The ``fixed`` variant's setup: every bit holding a static byte is hidden (``Fixed.pcpu_begin_fill_bits``)."""

    characterised = False

    @staticmethod
    def begin_fill_bits(pcpu_reserved_offset: z3.BitVecRef) -> z3.BitVecRef:
        """Fix 7 (static-overlap-hidden): round up."""
        size = pcpu_reserved_offset.size()
        return z3.LShR(pcpu_reserved_offset + z3.BitVecVal(PCPU_MIN_ALLOC_SIZE - 1, size), PCPU_MIN_ALLOC_SHIFT)
