"""The precondition sets of the layout proofs.

What ``pcpu_setup_first_chunk`` checks, what its callers and the arch code guarantee."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import z3

from pcpuverify.proofs.layout.encoding import (
    BV,
    PAGE_ALIGNED,
    Bool,
    LayoutParams,
    SymLayout,
    max_t_size_t,
    no_carry,
    ulong,
)

# -- preconditions -------------------------------------------------------------------


@dataclass(frozen=True)
class Precondition:
    """One condition the code states, with the C it comes from."""

    source: str
    formula: Callable[[SymLayout], Bool]


def _setup_checks(p: LayoutParams) -> list[Precondition]:
    """``pcpu_setup_first_chunk``'s ``PCPU_SETUP_BUG_ON`` list (PATCH 05 adds the PAGE_ALIGNED one), negated.

    Not about sizes, so not here: ``ai->nr_groups <= 0``,
    ``offset_in_page(__per_cpu_start)``, the cpu/unit map checks and
    ``pcpu_verify_alloc_info(ai) < 0`` (percpu-vm: always 0; percpu-km:
    ``nr_groups != 1``).
    """
    out = [
        Precondition("PCPU_SETUP_BUG_ON(!base_addr)", lambda L: L.x.base_addr != 0),
        Precondition("PCPU_SETUP_BUG_ON(offset_in_page(base_addr))", lambda L: PAGE_ALIGNED(L.x.base_addr, L.p)),
        Precondition("PCPU_SETUP_BUG_ON(ai->unit_size < size_sum)", lambda L: z3.UGE(L.x.unit_size, L.size_sum)),
        Precondition("PCPU_SETUP_BUG_ON(offset_in_page(ai->unit_size))", lambda L: PAGE_ALIGNED(L.x.unit_size, L.p)),
        Precondition(
            "PCPU_SETUP_BUG_ON(ai->unit_size < PCPU_MIN_UNIT_SIZE)",
            lambda L: z3.UGE(L.x.unit_size, ulong(L.p.min_unit_size)),
        ),
        Precondition(
            "PCPU_SETUP_BUG_ON(ai->reserved_size && !PAGE_ALIGNED(ai->static_size + ai->reserved_size))",
            lambda L: z3.Or(L.x.reserved_size == 0, PAGE_ALIGNED(L.x.static_size + L.x.reserved_size, L.p)),
        ),
        Precondition(
            "PCPU_SETUP_BUG_ON(ai->dyn_size < PERCPU_DYNAMIC_EARLY_SIZE)",
            lambda L: z3.UGE(L.x.dyn_size, ulong(L.p.early_size)),
        ),
    ]
    if p.smp:
        out.insert(0, Precondition("PCPU_SETUP_BUG_ON(!ai->static_size)  [CONFIG_SMP]", lambda L: L.x.static_size != 0))
    return out


def _min_unit_size(L: SymLayout) -> BV:
    """``pcpu_build_alloc_info``: ``min_unit_size = max_t(size_t, size_sum, PCPU_MIN_UNIT_SIZE)``."""
    return max_t_size_t(L.build_size_sum, ulong(L.p.min_unit_size))


def _caller_guarantees(p: LayoutParams) -> list[Precondition]:
    """What ``pcpu_embed_first_chunk``/``pcpu_page_first_chunk`` hand over, via ``pcpu_build_alloc_info``.

    ``ai->unit_size = alloc_size / upa`` is a page multiple of at least
    ``min_unit_size = max(size_sum, PCPU_MIN_UNIT_SIZE)`` (with ``ai``'s
    sizes as stored, what the setup checks ask) and, since every 4.12
    caller's ``atom_size`` is a power of two of at least a page (PAGE_SIZE,
    PMD_SIZE, 1 MiB on powerpc) and ``upa`` is the largest count that splits
    ``alloc_size = roundup(min_unit_size, atom_size)`` into page multiples,
    less than twice ``min_unit_size``.
    ``base_addr`` is the lowest unit of memory the caller allocated
    (``alloc_fn(cpu, gi->nr_units * ai->unit_size, atom_size)``), so
    ``[base_addr, base_addr + unit_size)`` does not wrap the address space,
    and the static area is copied into each unit (``memcpy(ptr,
    __per_cpu_load, ai->static_size)`` in both callers), so it fits one.
    """
    return [
        Precondition(
            "ai->static_size = __per_cpu_end - __per_cpu_start (unchanged)",
            lambda L: z3.BoolVal(True),
        ),
        Precondition(
            "ai->reserved_size = pcpu_align_reserved_region(static_size, reserved_size)",
            lambda L: L.x.reserved_size == L.build_reserved_size,
        ),
        Precondition(
            "ai->dyn_size = size_sum - static_size - reserved_size, size_sum = PFN_ALIGN(static_size +"
            " reserved_size + max_t(size_t, dyn_size, PERCPU_DYNAMIC_EARLY_SIZE))",
            lambda L: L.x.dyn_size == L.build_dyn_size,
        ),
        Precondition(
            "ai->unit_size = alloc_size / upa >= min_unit_size = max_t(size_t, size_sum, PCPU_MIN_UNIT_SIZE)",
            lambda L: z3.UGE(L.x.unit_size, _min_unit_size(L)),
        ),
        Precondition(
            "alloc_size = roundup(min_unit_size, atom_size), atom_size a power of two >= PAGE_SIZE, upa the"
            " largest count that splits it into page multiples: ai->unit_size < 2 * min_unit_size",
            lambda L: z3.ULT(z3.ZeroExt(1, L.x.unit_size), z3.ZeroExt(1, _min_unit_size(L)) << 1),
        ),
        Precondition(
            "base_addr = lowest unit of alloc_fn(cpu, gi->nr_units * ai->unit_size, atom_size): no wrap",
            lambda L: no_carry(L.x.base_addr, L.x.unit_size),
        ),
        Precondition(
            "memcpy(ptr, __per_cpu_load, ai->static_size) into each unit of ai->unit_size bytes",
            lambda L: z3.ULE(L.x.static_size, L.x.unit_size),
        ),
    ]


def _arch_arguments(p: LayoutParams) -> list[Precondition]:
    """The arguments the 4.12 callers pass to ``pcpu_build_alloc_info``.

    generic: ``pcpu_embed_first_chunk(PERCPU_MODULE_RESERVE, PERCPU_DYNAMIC_RESERVE, ...)``;
    x86-64: ``pcpu_embed_first_chunk(PERCPU_FIRST_CHUNK_RESERVE, PERCPU_MODULE_RESERVE +
    PERCPU_DYNAMIC_RESERVE - PERCPU_FIRST_CHUNK_RESERVE, ...)`` (= 8K, 28K);
    ``pcpu_page_first_chunk(reserved)`` passes dyn_size 0; without
    CONFIG_MODULES the reserve is 0.  ``static_size`` is the linker's.
    """
    return [
        Precondition(
            "reserved_size in {0, PERCPU_MODULE_RESERVE}",
            lambda L: z3.Or(L.x.req_reserved_size == 0, L.x.req_reserved_size == ulong(L.p.module_reserve)),
        ),
        Precondition(
            "dyn_size in {0 (pcpu_page_first_chunk), PERCPU_DYNAMIC_RESERVE}",
            lambda L: z3.Or(L.x.req_dyn_size == 0, L.x.req_dyn_size == ulong(L.p.dynamic_reserve)),
        ),
    ]


PRECONDITION_SETS: dict[str, Callable[[LayoutParams], list[Precondition]]] = {
    "setup": _setup_checks,
    "callers": lambda p: _setup_checks(p) + _caller_guarantees(p),
    "arch": lambda p: _setup_checks(p) + _caller_guarantees(p) + _arch_arguments(p),
}


def preconditions(L: SymLayout, set_name: str) -> list[Bool]:
    return [c.formula(L) for c in PRECONDITION_SETS[set_name](L.p)]
