"""The operations and initial states a trace is made of (sizes, alignments and offsets in bits)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Union


@dataclass(frozen=True)
class Alloc:
    """``pcpu_alloc(bits * 4 bytes, align * 4 bytes, reserved, gfp)``; atomic when ``pop_only``."""

    bits: int
    align: int = 1
    pop_only: bool = False
    reserved: bool = False

    def describe(self) -> str:
        where = " reserved" if self.reserved else ""
        atomic = " pop_only" if self.pop_only else ""
        return f"alloc{where} bits={self.bits} align={self.align}{atomic}"


@dataclass(frozen=True)
class Free:
    """``free_percpu()`` of the allocation starting at bit ``bit_off``."""

    bit_off: int
    reserved: bool = False

    def describe(self) -> str:
        where = " reserved" if self.reserved else ""
        return f"free{where} bit_off={self.bit_off}"


@dataclass(frozen=True)
class Populate:
    """The balance work populating the unpopulated pages of ``[page_start, page_end)``."""

    page_start: int
    page_end: int
    reserved: bool = False

    def describe(self) -> str:
        return f"populate pages [{self.page_start}, {self.page_end})"


@dataclass(frozen=True)
class Depopulate:
    """Depopulating the populated pages of ``[page_start, page_end)``; they must hold no allocation."""

    page_start: int
    page_end: int
    reserved: bool = False

    def describe(self) -> str:
        return f"depopulate pages [{self.page_start}, {self.page_end})"


Op = Union[Alloc, Free, Populate, Depopulate]

OP_NAMES: dict[str, type[Op]] = {
    "alloc": Alloc,
    "free": Free,
    "populate": Populate,
    "depopulate": Depopulate,
}


def op_name(op: Op) -> str:
    return next(name for name, cls in OP_NAMES.items() if isinstance(op, cls))


def op_to_json(op: Op) -> dict[str, object]:
    data: dict[str, object] = {"op": op_name(op)}
    data.update(asdict(op))
    if not op.reserved:
        del data["reserved"]
    return data


@dataclass(frozen=True)
class ChunkInit:
    """A chunk made by ``pcpu_alloc_chunk()``, populated as the geometry says."""

    def to_json(self) -> dict[str, object]:
        return {"kind": "chunk"}


@dataclass(frozen=True)
class FirstChunkInit:
    """The first chunk(s) made by ``pcpu_setup_first_chunk()`` from an allocation layout (bytes)."""

    static_size: int
    reserved_size: int
    dyn_size: int

    def to_json(self) -> dict[str, object]:
        return {"kind": "first_chunk", **asdict(self)}


Init = Union[ChunkInit, FirstChunkInit]
