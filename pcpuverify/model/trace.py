"""Trace files (``pcpu-verify-trace/1``): load and validate, replay on an implementation, save atomically.

A trace is the unit a kernel developer attaches to a mail: variant,
geometry, initial state, operations, and -- for a counterexample -- the
invariant it violates.  Loading checks everything the allocator's callers
check (``pcpu_alloc``'s size and alignment tests) and reports the first
problem as one line naming the field.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcpuverify.model.geometry import (
    PCPU_MIN_ALLOC_SIZE,
    PCPU_MIN_UNIT_SIZE,
    Geometry,
    GeometryError,
    check_nr_pages,
)
from pcpuverify.model.ops import (
    OP_NAMES,
    Alloc,
    ChunkInit,
    Depopulate,
    FirstChunkInit,
    Free,
    Init,
    Op,
    Populate,
    op_to_json,
)
from pcpuverify.model.variants import VARIANTS

FORMAT = "pcpu-verify-trace/1"
MAX_ALLOC_BITS = PCPU_MIN_UNIT_SIZE // PCPU_MIN_ALLOC_SIZE  # pcpu_alloc: size > PCPU_MIN_UNIT_SIZE fails


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file and the field."""


@dataclass(frozen=True)
class Trace:
    variant: str
    geometry: Geometry
    init: Init = field(default_factory=ChunkInit)
    ops: tuple[Op, ...] = ()
    violates: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "variant": self.variant,
            "geometry": (
                {"block_bits": self.geometry.block_bits}
                if isinstance(self.init, FirstChunkInit)
                else self.geometry.to_json()
            ),
            "init": self.init.to_json(),
            "ops": [op_to_json(op) for op in self.ops],
        }
        if self.violates is not None:
            data["violates"] = self.violates
        return data

    def with_ops(self, ops: tuple[Op, ...]) -> Trace:
        return Trace(self.variant, self.geometry, self.init, ops, self.violates)


def _int(where: str, data: dict[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(f"{where}: {key!r} must be an integer (got {value!r})")
    return value


def _bool(where: str, data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise TraceError(f"{where}: {key!r} must be true or false (got {value!r})")
    return value


def _parse_op(index: int, data: Any, geometry: Geometry) -> Op:
    where = f"ops[{index}]"
    if not isinstance(data, dict):
        raise TraceError(f"{where}: each op must be an object with an 'op' key")
    name = data.get("op")
    if not isinstance(name, str) or name not in OP_NAMES:
        raise TraceError(f"{where}: 'op' must be one of {', '.join(OP_NAMES)} (got {name!r})")
    known = {"op", "reserved"} | set(OP_NAMES[name].__dataclass_fields__)
    extra = sorted(set(data) - known)
    if extra:
        raise TraceError(f"{where}: unknown key {extra[0]!r} for an op {name!r}")
    reserved = _bool(where, data, "reserved")
    if name == "alloc":
        bits = _int(where, data, "bits")
        align = _int(where, data, "align", 1)
        if not 1 <= bits <= MAX_ALLOC_BITS:
            raise TraceError(f"{where}: 'bits' must be between 1 and {MAX_ALLOC_BITS} (got {bits})")
        if align < 1 or align & (align - 1) or align > geometry.block_bits:
            raise TraceError(
                f"{where}: 'align' must be a power of two between 1 and PAGE_SIZE in bits"
                f" ({geometry.block_bits}) (got {align})"
            )
        return Alloc(bits, align, _bool(where, data, "pop_only"), reserved)
    if name == "free":
        bit_off = _int(where, data, "bit_off")
        if bit_off < 0:
            raise TraceError(f"{where}: 'bit_off' must not be negative (got {bit_off})")
        return Free(bit_off, reserved)
    page_start, page_end = _int(where, data, "page_start"), _int(where, data, "page_end")
    cls = Populate if name == "populate" else Depopulate
    return cls(page_start, page_end, reserved)


def _parse_init(data: Any) -> Init:
    if data is None:
        return ChunkInit()
    if not isinstance(data, dict) or data.get("kind") not in ("chunk", "first_chunk"):
        raise TraceError("init: 'kind' must be 'chunk' or 'first_chunk'")
    _known_keys("init: ", data, INIT_KEYS[data["kind"]])
    if data["kind"] == "chunk":
        return ChunkInit()
    sizes = [_int("init", data, key) for key in ("static_size", "reserved_size", "dyn_size")]
    return FirstChunkInit(*sizes)


def _parse_geometry(data: Any, init: Init) -> Geometry:
    if not isinstance(data, dict):
        raise TraceError("geometry: must be an object with block_bits, nr_pages, populated")
    _known_keys("geometry: ", data, GEOMETRY_KEYS)
    block_bits = data.get("block_bits")
    if isinstance(init, FirstChunkInit):
        # the layout decides the pages; the first chunk is fully populated
        return Geometry(block_bits=block_bits, nr_pages=1, populated=(0,))
    nr_pages = data.get("nr_pages")
    check_nr_pages(nr_pages)
    populated = data["populated"] if "populated" in data else list(range(nr_pages))
    if not isinstance(populated, list):
        raise TraceError("geometry: 'populated' must be a list of page numbers")
    return Geometry(block_bits=block_bits, nr_pages=nr_pages, populated=tuple(populated))


TRACE_KEYS = ("format", "variant", "geometry", "init", "ops", "violates")
GEOMETRY_KEYS = ("block_bits", "nr_pages", "populated")
INIT_KEYS = {"chunk": ("kind",), "first_chunk": ("kind", "static_size", "reserved_size", "dyn_size")}


def _known_keys(where: str, data: dict[str, Any], known: tuple[str, ...]) -> None:
    """A misspelt key would be read as absent (a default in its place): refuse it, as an op's are."""
    extra = sorted(set(data) - set(known))
    if extra:
        raise TraceError(f"{where}unknown key {extra[0]!r}; the keys are {', '.join(known)}")


def trace_from_json(data: Any) -> Trace:
    if not isinstance(data, dict):
        raise TraceError("a trace must be a JSON object")
    _known_keys("", data, TRACE_KEYS)
    if data.get("format") != FORMAT:
        raise TraceError(f"'format' must be {FORMAT!r} (got {data.get('format')!r})")
    variant = data.get("variant")
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise TraceError(f"unknown variant {variant!r}; choose one of: {', '.join(sorted(VARIANTS))}")
    init = _parse_init(data.get("init"))
    try:
        geometry = _parse_geometry(data.get("geometry"), init)
    except GeometryError as e:
        raise TraceError(f"geometry: {e}") from None
    ops = data.get("ops", [])
    if not isinstance(ops, list):
        raise TraceError("'ops' must be a list")
    violates = data.get("violates")
    if violates is not None and not isinstance(violates, str):
        raise TraceError("'violates' must be an invariant name")
    return Trace(variant, geometry, init, tuple(_parse_op(i, op, geometry) for i, op in enumerate(ops)), violates)


def read_input(path: str | os.PathLike[str], error: type[Exception]) -> str:
    """A user's input file as text; a file that cannot be read is one ``error`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (not UTF-8)") from None


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and validate a trace file; every problem is a TraceError naming the file."""
    text = read_input(path, TraceError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceError(f"{path}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise TraceError(f"{path}: JSON nested too deeply to be a trace") from None
    try:
        return trace_from_json(data)
    except TraceError as e:
        raise TraceError(f"{path}: {e}") from None


class OutputError(ValueError):
    """A file or directory pcpu-verify was asked to write and cannot."""


def output_directory(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is, or can be made as, a writable directory: asked before the work whose files go there, so
    that a bad one is one line at the start, not a traceback after minutes of proofs.  Nothing is made yet (an
    interrupted run leaves no empty folder behind): ``make_directory`` makes it when the first file is written."""
    directory = Path(path)
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{directory}: cannot create: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{directory}: cannot create: {existing} is not writable")
    return directory


def make_directory(directory: Path) -> None:
    """``directory``, with its parents, as the first file is written into it; an OS error is an ``OutputError``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{directory}: cannot create: {e.strerror or e}") from None


def write_output(path: str | os.PathLike[str], text: str) -> None:
    """``write_atomically``, with an OS error as an ``OutputError`` (one line for the user)."""
    try:
        write_atomically(path, text)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temporary file and rename, so that an interrupted write leaves the old file intact."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def save_trace(trace: Trace, path: str | os.PathLike[str]) -> None:
    write_atomically(path, json.dumps(trace.to_json(), indent=2) + "\n")
