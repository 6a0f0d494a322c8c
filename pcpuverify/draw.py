"""Drawing chunk states the way kernel developers draw bitmaps: one character per bit, bit 0 on the left.

    alloc_map   |#.....##|########|     # allocated, . free; '|' separates blocks (pages)
    bound_map   |^^....^.|^.......|^    ^ set (one more column: bit nr_bits)
    contig_hint |      ==|========|     the chunk's hint region
    block hints |.~~~~~~~|........|     each md_block's contig_hint region
    populated   |   P    |   -    |     P populated page, - not

Under a step that breaks an invariant, each wrong field is set against what
a fresh scan of the bitmap gives (``fresh_scan``):

    md_blocks[1].contig_hint: 5 (fresh scan: 3)

Drawing is text built from the dumped state (kernel field names), so that a
trace's replay reads the same on a terminal, in a mail and in a test.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text

from pcpuverify.invariants.scan import first_zero, free_runs, leading_free, longest_free, trailing_free


# What each symbol of ``draw_chunk`` means, for a reader who has not seen the module docstring.
LEGEND = """\
legend  # allocated bit, . free bit (alloc_map);  '|' between pages (blocks)
        ^ bound_map: an allocation's first bit and the bit after it (+1 column)
        = the chunk's contig_hint region,  ~ each block's contig_hint region
        P populated page, - not;  in red: a field an invariant finds wrong"""


def _cells(row: str, block_bits: int, fill: str = "") -> str:
    """Split a per-bit row into blocks separated by '|'."""
    blocks = [row[i : i + block_bits] for i in range(0, len(row), block_bits)]
    return "|" + "|".join(blocks) + "|" + fill


def _region(nbits: int, start: int, length: int, char: str) -> str:
    return "".join(char if start <= i < start + length else " " for i in range(nbits))


def draw_chunk(name: str, chunk: dict[str, Any], block_bits: int, highlight: set[str] | None = None) -> Text:
    """The picture of one dumped chunk; fields named in ``highlight`` are drawn in red."""
    hot = highlight or set()
    alloc_map: str = chunk["alloc_map"]
    bound_map: str = chunk["bound_map"]
    nbits = len(alloc_map)
    md = chunk["md_blocks"]

    out = Text()
    counters = ", ".join(f"{key} {chunk[key]}" for key in _HEADER_FIELDS if key in chunk)
    out.append(f"{name} chunk: {chunk['nr_pages']} pages x {block_bits} bits, {counters}\n")
    ruler = "".join(f"{i:<{block_bits}}" for i in range(0, nbits, block_bits))
    out.append(f"  {'bit':<12} {' ' + ruler}\n", style="dim")

    def row(label: str, text: str, field: str, note: str = "") -> None:
        style = "bold red" if field in hot else ""
        out.append(f"  {label:<12} ")
        out.append(text, style=style)
        out.append(f"  {note}\n" if note else "\n", style="dim")

    row("alloc_map", _cells(alloc_map.replace("1", "#").replace("0", "."), block_bits), "alloc_map")
    bounds = bound_map.replace("1", "^").replace("0", ".")
    row("bound_map", _cells(bounds[:nbits], block_bits, bounds[nbits:]), "bound_map")
    label, field, length, start = _chunk_hint(chunk)
    hint = _region(nbits, start, length, "=")
    row(label, _cells(hint, block_bits), field, f"{length} bits at {start}")
    block_row = "".join(_region(block_bits, b["contig_hint_start"], b["contig_hint"], "~") for b in md)
    row("block hints", _cells(block_row, block_bits), "md_blocks")
    pages = "".join(
        f"{('P' if p == '1' else '-'):^{block_bits}}" for p in chunk["populated"]
    )
    row("populated", _cells(pages, block_bits), "populated")
    for i, b in enumerate(md):
        fields = [("scan_hint", f"scan_hint={b['scan_hint']}@{b['scan_hint_start']}")] if "scan_hint" in b else []
        fields += [
            ("contig_hint", f"contig_hint={b['contig_hint']}@{b['contig_hint_start']}"),
            ("left_free", f"left_free={b['left_free']}"),
            ("right_free", f"right_free={b['right_free']}"),
            ("first_free", f"first_free={b['first_free']}"),
        ]
        out.append(f"  md_blocks[{i}] ")
        for key, text in fields:
            wrong = f"md_blocks[{i}].{key}" in hot or f"md_blocks[{i}].{key}_start" in hot
            out.append(text + " ", style="bold red" if wrong else "")
        out.append("\n")
    return out


# the chunk's counters, under each release's name (2017 posting, 4.14, 5.2 on; 5.14 adds isolated)
_HEADER_FIELDS = ("free_bits", "free_bytes", "first_free_block", "first_bit", "nr_populated", "nr_empty_pop_pages",
                  "isolated")


def _chunk_hint(chunk: dict[str, Any]) -> tuple[str, str, int, int]:
    """The chunk's contig hint as ``(label, field, length, start)``: ``contig_hint``, 4.14's ``contig_bits`` or ``chunk_md``'s."""
    if "contig_bits" in chunk:
        return "contig_bits", "contig_bits", chunk["contig_bits"], chunk["contig_bits_start"]
    if "chunk_md" in chunk:
        md = chunk["chunk_md"]
        return "chunk_md", "chunk_md.contig_hint", md["contig_hint"], md["contig_hint_start"]
    return "contig_hint", "contig_hint", chunk["contig_hint"], chunk["contig_hint_start"]


def draw_state(state: dict[str, Any], block_bits: int, highlight: dict[str, set[str]] | None = None) -> Text:
    """Every chunk of a dumped state, then the global counter."""
    out = Text()
    for name, chunk in state["chunks"].items():
        out.append(draw_chunk(name, chunk, block_bits, (highlight or {}).get(name)))
    out.append(f"  pcpu_nr_empty_pop_pages {state['pcpu_nr_empty_pop_pages']}\n")
    return out


# -- wrong fields against a fresh scan --------------------------------------------------

_MAPS = ("alloc_map", "bound_map", "populated")  # the ground truth: nothing to scan them against
_BLOCK_FIELD = re.compile(r"md_blocks\[(\d+)\]\.(\w+)")


def _bits(bitmap: str) -> list[int]:
    return [int(c) for c in bitmap]


def _longest_start(bits: list[int]) -> int | None:
    """Where the first longest free run starts, as pcpu_block_refresh_hint keeps it (None: nothing free)."""
    runs = free_runs(bits)
    longest = max((r.length for r in runs), default=0)
    return next((r.start for r in runs if r.length == longest), None)


def _empty_pop_pages(chunk: dict[str, Any], block_bits: int) -> int:
    amap = _bits(chunk["alloc_map"])
    return sum(
        1
        for page, pop in enumerate(chunk["populated"])
        if pop == "1" and not any(amap[page * block_bits : (page + 1) * block_bits])
    )


def fresh_scan(state: dict[str, Any], chunk_name: str, field: str, block_bits: int) -> tuple[Any, Any] | None:
    """``(value in the state, value a fresh scan of the bitmaps gives)`` for one field; None for a map.

    The scans are those of invariants/scan.py, written from the definitions
    (longest, leading and trailing free runs, first free bit), not the port.
    """
    chunk = state["chunks"][chunk_name]
    amap = _bits(chunk["alloc_map"])
    block = _BLOCK_FIELD.fullmatch(field)
    if block is not None:
        index, key = int(block.group(1)), block.group(2)
        bits = amap[index * block_bits : (index + 1) * block_bits]
        fresh = {
            "contig_hint": longest_free(bits),
            "contig_hint_start": _longest_start(bits),
            "left_free": leading_free(bits),
            "right_free": trailing_free(bits),
            "first_free": first_zero(bits),
        }
        if key not in fresh:  # scan_hint, nr_bits: no definition to scan by
            return None
        return chunk["md_blocks"][index][key], fresh[key]
    if field == "pcpu_nr_empty_pop_pages":
        fresh_total = sum(_empty_pop_pages(c, block_bits) for name, c in state["chunks"].items() if name != "reserved")
        return state["pcpu_nr_empty_pop_pages"], fresh_total
    scans = {
        "contig_hint": lambda: longest_free(amap),
        "contig_hint_start": lambda: _longest_start(amap),
        "free_bits": lambda: amap.count(0),
        "first_free_block": lambda: first_zero(amap) // block_bits,
        "nr_populated": lambda: chunk["populated"].count("1"),
        "nr_empty_pop_pages": lambda: _empty_pop_pages(chunk, block_bits),
        # 4.14 and 5.2 names of the same quantities
        "contig_bits": lambda: longest_free(amap),
        "contig_bits_start": lambda: _longest_start(amap),
        "first_bit": lambda: first_zero(amap),
        "chunk_md.contig_hint": lambda: longest_free(amap),
        "chunk_md.contig_hint_start": lambda: _longest_start(amap),
        "chunk_md.first_free": lambda: first_zero(amap),
    }
    if field not in scans:
        return None
    head, _, key = field.partition(".")
    return (chunk[head][key] if key else chunk[field]), scans[field]()


def draw_fresh_scans(state: dict[str, Any], fields: list[tuple[str, str]], block_bits: int) -> Text:
    """One line per wrong ``(chunk, field)``: ``field: value (fresh scan: X)``; a map is named, not scanned."""
    out = Text()
    several = len(state["chunks"]) > 1
    for chunk_name, field in dict.fromkeys(fields):
        where = f"{chunk_name} chunk " if several else ""
        compared = fresh_scan(state, chunk_name, field, block_bits)
        out.append(f"  {where}{field}: ")
        if compared is None:
            why = "see its row above (a map is the ground truth: no fresh scan)" if field in _MAPS else "no fresh scan"
            out.append(why + "\n", style="dim")
            continue
        value, fresh = compared
        out.append(str(value), style="bold red")
        out.append(f" (fresh scan: {'nothing free' if fresh is None else fresh})\n")
    return out
