"""The first-chunk layout arithmetic of PATCH 05..09 over full 64-bit values: encoding, obligations, conformance.

Modules, bottom to top: ``encoding``, ``preconditions``, ``properties``,
``breaks``, ``conformance``, ``prove``.

``pcpu_align_reserved_region`` (PATCH 05), the size part of
``pcpu_build_alloc_info`` and the metadata part of
``pcpu_setup_first_chunk`` (PATCH 06..09) are encoded in QF_BV with the C
types they have: ``unsigned long``/``size_t``/``ssize_t`` are 64-bit
vectors (two's complement, so one encoding serves all three; where the
signedness matters -- a comparison, a signed overflow -- it is spelled
out), ``int`` is a 32-bit vector and every conversion between them is the
truncation or sign extension GCC performs.  ``PAGE_SIZE`` is an
``unsigned long`` (``_AC(1, UL) << PAGE_SHIFT``), so ``pages * PAGE_SIZE``
is computed in 64 bits and only its conversion back to ``int`` can lose
bits.

Each property is an obligation "preconditions and not property": unsat is
PROVED (after a vacuity check that the preconditions, and the case the
property speaks about, are satisfiable -- else VACUOUS), sat is VIOLATED
with a counterexample made small in the order of ``_MINIMIZE_ORDER``, and
anything else is UNKNOWN.  Where a property breaks, a characterisation of
the breaking inputs is stated next to it and proved too -- "iff":
``preconditions => (not property <=> condition)``, "only-if":
``preconditions => (not property => condition)`` -- so a report says
*which* inputs break it, not just one (``Result.extra``: ``breaks_when``,
``breaks_when_kind``, ``breaks_when_verdict``; ``counterexample`` holds
every input and derived value, C ints signed).

The precondition sets (``PRECONDITION_SETS``) are the code's own words:

* ``setup``   -- what ``pcpu_setup_first_chunk`` itself checks
  (its ``PCPU_SETUP_BUG_ON`` list);
* ``callers`` -- additionally what ``pcpu_embed_first_chunk`` /
  ``pcpu_page_first_chunk`` guarantee through ``pcpu_build_alloc_info``;
* ``arch``    -- additionally the arguments the callers pass
  (``PERCPU_MODULE_RESERVE``, ``PERCPU_DYNAMIC_RESERVE`` or 0).

``pcpu_align_reserved_region``'s properties read the caller's request
(``req.*``); the ``setup`` set says nothing about it, so there they are
judged over every argument the function can be given.
"""

# LAYOUT_PROPERTIES from ``breaks``: the registry once every property carries its breaking inputs
from pcpuverify.proofs.layout.breaks import LAYOUT_PROPERTIES
from pcpuverify.proofs.layout.conformance import (
    cross_check,
    evaluate_layout,
    evaluate_predicates,
)
from pcpuverify.proofs.layout.encoding import (
    LayoutInputs,
    LayoutParams,
    layout_of,
    ulong,
)
from pcpuverify.proofs.layout.preconditions import PRECONDITION_SETS, preconditions
from pcpuverify.proofs.layout.properties import LayoutProperty
from pcpuverify.proofs.layout.prove import prove_layout_property, run_layout_suite

__all__ = [
    "LAYOUT_PROPERTIES",
    "PRECONDITION_SETS",
    "LayoutInputs",
    "LayoutParams",
    "LayoutProperty",
    "cross_check",
    "evaluate_layout",
    "evaluate_predicates",
    "layout_of",
    "preconditions",
    "prove_layout_property",
    "run_layout_suite",
    "ulong",
]
