"""Conformance: the layout formulas on concrete values, against ``model/first_chunk``."""

from __future__ import annotations

import random

import z3

from pcpuverify.model.first_chunk import (
    LayoutError,
    check_layout,
    pcpu_setup_first_chunk,
)
from pcpuverify.model.geometry import PCPU_MIN_ALLOC_SIZE
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.variants import variant_class
from pcpuverify.proofs.layout.encoding import (
    INT_BITS,
    MASK64,
    LayoutInputs,
    LayoutParams,
    _pfn_align_int,
    layout_of,
)
from pcpuverify.proofs.layout.preconditions import preconditions
from pcpuverify.proofs.layout.properties import LAYOUT_PROPERTIES

# -- conformance: the same formulas on concrete values, against model/first_chunk ----------


def evaluate_layout(params: LayoutParams, **inputs: int) -> dict[str, int]:
    """Every named term of the layout for concrete inputs (C ints signed, the rest unsigned 64-bit)."""
    L = layout_of(LayoutInputs.const(**inputs), params)
    out: dict[str, int] = {}
    for name, term in L.values().items():
        v = z3.simplify(term)
        if not z3.is_bv_value(v):
            raise ValueError(f"layout term {name} did not reduce to a constant: {v}")
        n = v.as_long()
        if v.size() == INT_BITS and n >= 1 << (INT_BITS - 1):
            n -= 1 << INT_BITS
        out[name] = n
    return out


def evaluate_predicates(params: LayoutParams, set_name: str, **inputs: int) -> tuple[bool, dict[str, bool]]:
    """Whether the inputs meet ``set_name``'s preconditions, and each property's truth on them."""
    L = layout_of(LayoutInputs.const(**inputs), params)
    accepted = z3.is_true(z3.simplify(z3.And(*preconditions(L, set_name))))
    props = {name: z3.is_true(z3.simplify(prop.holds(L))) for name, prop in LAYOUT_PROPERTIES.items()}
    return accepted, props


def _model_free_range(chunk_map: int, nbits: int) -> tuple[int, int]:
    """First free bit and number of free bits of a fresh first chunk (free bits form one run to the end)."""
    free = [i for i in range(nbits) if not (chunk_map >> i) & 1]
    return (free[0] if free else nbits), len(free)


def cross_check(
    page_size: int = 32, count: int = 300, seed: int = 0, max_pages: int = 8, variant: str = "v1"
) -> list[str]:
    """Concrete layouts through ``layout_of`` and ``model/first_chunk``: every disagreement, one line each.

    Uses ``LayoutParams.scaled(page_size)`` (the model's constants),
    ``base_addr`` = some page-aligned address and ``unit_size`` =
    ``PFN_ALIGN(size_sum)`` (what the model derives).  Compared: acceptance
    by the setup checks, pcpu_reserved_offset, begin_fill_bits,
    map_size_bytes, each chunk's nr_pages / bits / blocks / free_bits,
    the bits it can hand out, and the static-overlap property against the
    model chunk's ``alloc_map`` (every bit holding a static byte allocated).
    """
    params = LayoutParams.scaled(page_size, variant)
    rng = random.Random(f"layout:{seed}:{page_size}")
    alloc_cls = variant_class(variant)
    out: list[str] = []
    for i in range(count):
        static = rng.choice([rng.randrange(1, page_size * 2), rng.randrange(1, 5) * page_size + rng.randrange(4)])
        if rng.random() < 0.15:
            static = 0
        kind = rng.random()
        if kind < 0.4:
            reserved = 0
        elif kind < 0.8:
            reserved = _pfn_align_int(static + rng.randrange(1, page_size * 2), page_size) - static
        else:
            reserved = rng.randrange(1, page_size * 2)  # often refused: not page aligned
        dyn = rng.choice([rng.randrange(page_size, page_size * max_pages // 2),
                          rng.randrange(1, max_pages // 2 + 1) * page_size, rng.randrange(0, page_size)])
        size_sum = static + reserved + dyn
        unit = _pfn_align_int(size_sum, page_size)
        base = page_size * rng.randrange(1, 1 << 20)
        values = dict(static_size=static, reserved_size=reserved, dyn_size=dyn, unit_size=unit, base_addr=base)
        where = f"layout {i} (page {page_size}: static {static}, reserved {reserved}, dyn {dyn})"
        accepted, props = evaluate_predicates(params, "setup", **values)
        try:
            layout = check_layout(FirstChunkInit(static, reserved, dyn), page_size)
        except LayoutError:
            if accepted:
                out.append(f"{where}: model refuses it, the encoding's setup checks accept it")
            continue
        if not accepted:
            out.append(f"{where}: model accepts it, the encoding's setup checks refuse it")
            continue
        enc = evaluate_layout(params, **values)
        pairs = [
            ("pcpu_reserved_offset", layout.pcpu_reserved_offset),
            ("map_size_bytes", layout.map_size_bytes),
            ("first.chunk_pages", layout.first_chunk_pages),
            ("pcpu_unit_pages", layout.unit_pages),
        ]
        if reserved:
            pairs.append(("dyn.chunk_pages", layout.dyn_chunk_pages))
        alloc = alloc_cls(params.block_bits, layout.unit_pages)
        # the variant's own line, not FirstChunkLayout.begin_fill_bits (always v1's truncating division)
        pairs.append(("begin_fill_bits", alloc.pcpu_begin_fill_bits(layout.pcpu_reserved_offset)))
        chunks = pcpu_setup_first_chunk(alloc, layout)
        roles = [("first", chunks["reserved" if reserved else "dynamic"])]
        if reserved:
            roles.append(("dyn", chunks["dynamic"]))
        for role, chunk in roles:
            first_free, nr_free = _model_free_range(chunk.alloc_map.value, chunk.alloc_map.nbits)
            pairs += [
                (f"{role}.chunk_pages", chunk.nr_pages),
                (f"{role}.nr_bits", alloc.pcpu_nr_pages_to_bits(chunk)),
                (f"{role}.nr_blocks", alloc.pcpu_nr_pages_to_blocks(chunk)),
                (f"{role}.free_bits", chunk.free_bits),
                (f"{role}.alloc_len", nr_free * PCPU_MIN_ALLOC_SIZE),
            ]
            if nr_free:
                base_of = enc["aligned_addr"] if role == "first" else base + static + reserved
                pairs.append((f"{role}.alloc_start", (base_of + first_free * PCPU_MIN_ALLOC_SIZE) & MASK64))
        for name, model_value in pairs:
            if enc[name] != model_value:
                out.append(f"{where}: {name} is {enc[name]} in the encoding, {model_value} in model/")
        # model/'s own account of the static overlap: every bit holding a static byte is allocated
        first_chunk = roles[0][1]
        static_bits = -(-alloc.pcpu_reserved_offset // PCPU_MIN_ALLOC_SIZE)
        amap = first_chunk.alloc_map
        hidden = all((amap.value >> b) & 1 for b in range(min(static_bits, amap.nbits)))
        if hidden != props["first-chunk-static-region-not-allocatable"]:
            out.append(
                f"{where}: first-chunk-static-region-not-allocatable is"
                f" {props['first-chunk-static-region-not-allocatable']} in the encoding, but model/'s"
                f" alloc_map {'hides' if hidden else 'leaves free'} the static bytes"
            )
    return out
