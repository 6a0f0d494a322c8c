"""The state dump of a C build, per release layout, with each release's own field names.

``dump()`` of a harness gives, like ``model/state.py``'s ``dump_state``::

    {"layout": L, "pcpu_nr_empty_pop_pages": n, "chunks": {"dynamic": CHUNK}}

and, for a first chunk with a reserved region, ``"reserved": CHUNK`` too.

CHUNK always has ``nr_pages``, ``slot`` (the ``pcpu_slot[]`` /
``pcpu_chunk_lists[]`` list the chunk is on, found by scanning the lists),
``alloc_map``, ``bound_map``, ``populated`` (strings, bit 0 first),
``md_blocks`` (a list of dicts of MD_FIELDS[L]), the chunk fields
CHUNK_FIELDS[L] and ``allocations`` (ghost, kept by the harness: bit offset
-> bits).  ``chunk_md`` is a dict of MD_FIELDS[L].  Per layout:

- ``seed`` (the July 2017 posting, PATCH 09/10): the model's own names:
  ``free_bits``, ``contig_hint``, ``contig_hint_start``,
  ``first_free_block``; blocks ``contig_hint``, ``contig_hint_start``,
  ``left_free``, ``right_free``, ``first_free``.
- ``4.14`` (4.14-5.1): ``free_bytes``, ``contig_bits``,
  ``contig_bits_start``, ``first_bit`` (a bit offset: "no free below
  this"); blocks as the seed's.
- ``5.2`` (5.2-5.8), ``5.9`` (5.9-5.13, memcg chunk types), ``5.14`` (5.14
  on, isolated chunks): ``free_bytes`` and ``chunk_md`` in place of the
  chunk's hint fields; blocks add ``scan_hint``, ``scan_hint_start`` and
  ``nr_bits``; 5.14 adds ``isolated``.

The driver (shim/driver.c) prints the fields in exactly these orders.
"""

from __future__ import annotations

SEED_MD = ("contig_hint", "contig_hint_start", "left_free", "right_free", "first_free")
SCAN_HINT_MD = ("scan_hint", "scan_hint_start", "contig_hint", "contig_hint_start",
                "left_free", "right_free", "first_free", "nr_bits")

MD_FIELDS: dict[str, tuple[str, ...]] = {
    "seed": SEED_MD,
    "4.14": SEED_MD,
    "5.2": SCAN_HINT_MD,
    "5.9": SCAN_HINT_MD,
    "5.14": SCAN_HINT_MD,
}

_POPULATION = ("nr_populated", "nr_empty_pop_pages", "immutable")
CHUNK_FIELDS: dict[str, tuple[str, ...]] = {
    "seed": ("free_bits", "contig_hint", "contig_hint_start", "first_free_block", *_POPULATION, "has_reserved"),
    "4.14": ("free_bytes", "contig_bits", "contig_bits_start", "first_bit", *_POPULATION),
    "5.2": ("free_bytes", "chunk_md", *_POPULATION),
    "5.9": ("free_bytes", "chunk_md", *_POPULATION),
    "5.14": ("free_bytes", "chunk_md", *_POPULATION, "isolated"),
}
BOOL_FIELDS = frozenset({"immutable", "has_reserved", "isolated"})
HEAD_FIELDS = ("nr_pages", "slot", "alloc_map", "bound_map", "populated")


def parse_state(layout: str, text: str) -> tuple[int, dict[str, object]]:
    """(pcpu_nr_empty_pop_pages, chunk dict without ``allocations``) from the driver's STATE words."""
    global_empty, chunk = text.split(maxsplit=1)
    return int(global_empty), parse_chunk(layout, chunk)


def parse_chunk(layout: str, text: str) -> dict[str, object]:
    """One chunk's dict without ``allocations`` from the driver's words for it."""
    words = text.split()
    pos = 0

    def take() -> str:
        nonlocal pos
        pos += 1
        return words[pos - 1]

    def md() -> dict[str, int]:
        return {name: int(take()) for name in MD_FIELDS[layout]}

    chunk: dict[str, object] = {}
    for name in HEAD_FIELDS:
        word = take()
        chunk[name] = word if name in ("alloc_map", "bound_map", "populated") else int(word)
    for name in CHUNK_FIELDS[layout]:
        if name == "chunk_md":
            chunk[name] = md()
        elif name in BOOL_FIELDS:
            chunk[name] = take() != "0"
        else:
            chunk[name] = int(take())
    chunk["md_blocks"] = [md() for _ in range((len(words) - pos) // len(MD_FIELDS[layout]))]
    if pos != len(words):
        raise ValueError(f"driver state has {len(words) - pos} words left over for layout {layout}")
    return chunk
