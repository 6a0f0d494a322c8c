"""A kernel's ``mm/percpu.c`` as the build takes it: where it is, its hash, its release layout, its allocator core.

The core is a text slice of ``mm/percpu.c``, never edited: from the line
after ``#include "percpu-internal.h"`` (the file's constants and globals,
then the slot helpers) through the end of ``pcpu_init_md_blocks``, plus
four functions defined after it, copied whole: ``pcpu_alloc_first_chunk``
(the first chunk of ``pcpu_setup_first_chunk``), ``pcpu_alloc_chunk``,
``pcpu_chunk_populated`` and ``pcpu_chunk_depopulated``.  This follows the
method of the kernel's own user-space harnesses (tools/testing/vma and
tools/testing/shared compile the kernel's C as it is, against a shim).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


class SourceError(ValueError):
    """A source the build cannot take; the message is one line for the user."""


CORE_START = '#include "percpu-internal.h"'
CORE_END = "pcpu_init_md_blocks"
EXTRA_FUNCTIONS = ("pcpu_alloc_first_chunk", "pcpu_alloc_chunk", "pcpu_chunk_populated", "pcpu_chunk_depopulated")

# Release layouts, newest first: the first whose every pattern matches the
# source (percpu.c + percpu-internal.h) is the layout.  Each names what
# changed in the structures or in the code the harness calls.
LAYOUT_SIGNS: dict[str, tuple[str, ...]] = {
    # 5.14: isolated chunks, sidelined/free/to_depopulate slots (pcpu_free_slot)
    "5.14": (r"struct pcpu_block_md\s+chunk_md;", r"\bbool\s+isolated;", r"\bpcpu_free_slot\b"),
    # 5.9: memcg chunk types, pcpu_chunk_lists[type * pcpu_nr_slots + slot]
    "5.9": (r"struct pcpu_block_md\s+chunk_md;", r"\bpcpu_chunk_lists\b", r"\bpcpu_chunk_type\b"),
    # 5.2: scan_hint, nr_bits and the chunk's chunk_md block
    "5.2": (r"struct pcpu_block_md\s+chunk_md;", r"\bscan_hint;", r"\*pcpu_slot\b"),
    # 4.14: the series as merged: contig_bits, first_bit, free_bytes
    "4.14": (r"\bcontig_bits;", r"\bfirst_bit;", r"\bfree_bytes;", r"pcpu_chunk_populated\([^)]*for_alloc"),
    # the July 2017 posting (PATCH 09/10): contig_hint, first_free_block, free_bits
    "seed": (r"\bfirst_free_block;", r"\bfree_bits;", r"\bcontig_hint;"),
}

# Signatures the driver must call differently within a layout: macro -> pattern.
FEATURES: dict[str, str] = {
    "PCPU_ALLOC_CHUNK_GFP": r"pcpu_alloc_chunk\(gfp_t gfp\)",  # 4.19 on
}


@dataclass(frozen=True)
class KernelSource:
    """``mm/percpu.c`` and ``mm/percpu-internal.h`` as text, with where they came from.

    Frozen, so what is read off the texts (hash, layout, features) is read once per source.
    """

    percpu_c: Path
    percpu_c_text: str
    internal_h_text: str

    @cached_property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for text in (self.percpu_c_text, self.internal_h_text):
            data = text.encode()
            h.update(len(data).to_bytes(8, "little") + data)
        return h.hexdigest()

    @cached_property
    def layout(self) -> str:
        """The release layout (a key of LAYOUT_SIGNS); SourceError for an unknown one."""
        text = self.percpu_c_text + self.internal_h_text
        for name, signs in LAYOUT_SIGNS.items():
            if all(re.search(sign, text) for sign in signs):
                return name
        raise SourceError(f"{self.percpu_c}: unknown release layout (known: {', '.join(LAYOUT_SIGNS)})")

    @cached_property
    def features(self) -> tuple[str, ...]:
        """The FEATURES macros this source needs."""
        return tuple(name for name, sign in FEATURES.items() if re.search(sign, self.percpu_c_text))

    def core(self) -> tuple[int, str]:
        """The allocator core: (first line number in percpu.c, text), then the extra functions."""
        lines = self.percpu_c_text.splitlines(keepends=True)
        try:
            first = next(i for i, line in enumerate(lines) if line.strip() == CORE_START) + 1
        except StopIteration:
            raise SourceError(f"{self.percpu_c}: no line {CORE_START!r} to start the allocator core at") from None
        last = _function_end(lines, CORE_END, self.percpu_c)
        return first + 1, "".join(lines[first:last + 1])

    def extra_functions(self) -> list[tuple[int, str]]:
        """(first line number, text) of each of EXTRA_FUNCTIONS."""
        lines = self.percpu_c_text.splitlines(keepends=True)
        found = []
        for name in EXTRA_FUNCTIONS:
            start = _function_start(lines, name, self.percpu_c)
            end = _function_end(lines, name, self.percpu_c)
            found.append((start + 1, "".join(lines[start:end + 1])))
        return found


def _function_start(lines: list[str], name: str, where: Path) -> int:
    """The line of the definition of ``name``: at column 0, a return type, ``name(`` and no ``;``."""
    pattern = re.compile(rf"^[a-z].*\b{name}\(")
    for i, line in enumerate(lines):
        if pattern.match(line) and not line.rstrip().endswith(";"):
            return i
    raise SourceError(f"{where}: no definition of {name}()")


def _function_end(lines: list[str], name: str, where: Path) -> int:
    """The line of the closing ``}`` (at column 0) of the definition of ``name``."""
    start = _function_start(lines, name, where)
    for i in range(start, len(lines)):
        if lines[i].startswith("}"):
            return i
    raise SourceError(f"{where}: the definition of {name}() does not end")


def load_source(path: str | Path) -> KernelSource:
    """A kernel tree, a folder holding ``mm/percpu.c`` (or ``percpu.c``) and its header, or ``percpu.c`` itself."""
    p = Path(path)
    if p.is_dir():
        candidates = [p / "mm" / "percpu.c", p / "percpu.c"]
        c_file = next((c for c in candidates if c.is_file()), None)
        if c_file is None:
            raise SourceError(f"{path}: no mm/percpu.c in this folder")
    elif p.is_file():
        c_file = p
    else:
        raise SourceError(f"{path}: no such file or folder")
    header = c_file.with_name("percpu-internal.h")
    if not header.is_file():
        raise SourceError(f"{header}: missing (mm/percpu.c needs its mm/percpu-internal.h)")
    try:
        return KernelSource(c_file, c_file.read_text(encoding="utf-8"), header.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{c_file}: cannot read: {e}") from None
