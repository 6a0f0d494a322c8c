"""A C build of a kernel's allocator, with the interface of ``model.reference.Reference``: ``apply(op)``, ``dump()``.

It creates one chunk as the Reference does (``pcpu_alloc_chunk``,
``pcpu_chunk_relocate(chunk, -1)``, ``pcpu_chunk_populated`` of the
geometry's populated pages) and applies the model's operations with the
kernel's own functions (shim/driver.c says which, per layout): a free is
``pcpu_free_area``, as the model's, without ``free_percpu``'s balance
decisions (from 5.14 on, ``pcpu_isolate_chunk`` of a chunk worth
reclaiming, which no single-chunk model has).  It keeps
the ghost ``allocations`` (bit offset -> bits) and refuses, with the
Reference's OpError, what a caller never issues (a free of no live
allocation, a page range outside the chunk, depopulating pages that hold
allocated bits).  A ``FirstChunkInit`` (4.14 on) makes the first chunk and,
with a reserved region, the reserved chunk, as ``pcpu_setup_first_chunk``
makes them (``pcpu_alloc_first_chunk``; kernel/first_chunk.py): both are
immutable, so [de]population is refused there, as the reference refuses it,
and the runs they hide are ghost allocations no caller frees.  Its build
must have the layout's unit pages (``build_pages``).  The 2017 posting's
first chunk is refused with KernelInitError (kernel/first_chunk.py says why).

A sanitizer report or a ``WARN_ON`` during a step is a Finding of that
step.  After a sanitizer report the driver is gone and the state is
undefined, as in C: ``apply`` then raises DriverGone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pcpuverify.kernel.build import Build, build
from pcpuverify.kernel.first_chunk import c_first_chunk
from pcpuverify.kernel.process import Crash, DriverProcess
from pcpuverify.kernel.schema import parse_chunk, parse_state
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Depopulate, FirstChunkInit, Free, Init, Op, Populate
from pcpuverify.model.reference import OpError, StepResult
from pcpuverify.model.state import dynamic_chunk


class KernelInitError(ValueError):
    """An init the C harness does not build (one line for the user)."""


class DriverGone(RuntimeError):
    """The driver ended (a sanitizer report); the C state is undefined from that step on."""


@dataclass(frozen=True)
class Finding:
    """What the C itself reported during step ``step`` (-1: the init): a sanitizer report or a WARN_ON."""

    step: int
    kind: str  # "sanitizer" or "warning"
    summary: str
    report: str = ""

    def describe(self) -> str:
        where = "init" if self.step < 0 else f"step {self.step}"
        return f"{self.kind} at {where}: {self.summary}"


def command(op: Op) -> str:
    """The driver's command line for ``op``."""
    reserved = " 1" if op.reserved else ""
    if isinstance(op, Alloc):
        return f"a {op.bits} {op.align} {int(op.pop_only)}{reserved}"
    if isinstance(op, Free):
        return f"f {op.bit_off}{reserved}"
    if isinstance(op, Populate):
        return f"p {op.page_start} {op.page_end}"
    return f"d {op.page_start} {op.page_end}"


def init_command(geometry: Geometry, init: Init | None = None) -> str:
    if isinstance(init, FirstChunkInit):
        return f"I {init.static_size} {init.reserved_size} {init.dyn_size}"
    return " ".join(["i", *(str(p) for p in geometry.populated)])


def build_pages(geometry: Geometry, init: Init) -> int:
    """The pages a build for ``init`` needs: the geometry's, or a first chunk's unit (LayoutError if refused)."""
    if isinstance(init, FirstChunkInit):
        return c_first_chunk(init, geometry.page_size).unit_pages
    return geometry.nr_pages


@dataclass
class Reply:
    """One parsed driver reply."""

    ret: int
    warnings: list[str]
    pcpu_nr_empty_pop_pages: int
    chunk: dict[str, object]
    reserved: dict[str, object] | None = None


def parse_reply(layout: str, line: str) -> Reply:
    ret, warnings, state, *reserved = line.split("|")
    global_empty, chunk = parse_state(layout, state)
    return Reply(int(ret), [w for w in warnings.split(";") if w], global_empty, chunk,
                 parse_chunk(layout, reserved[0]) if reserved else None)


def make_dump(layout: str, reply: Reply, allocations: dict[int, int],
              reserved_allocations: dict[int, int] | None = None) -> dict[str, object]:
    """The dump of schema.py: the driver's state and the ghost allocations (of the reserved chunk too, if any)."""
    def with_ghost(state: dict[str, object], ghost: dict[int, int]) -> dict[str, object]:
        return {**state, "allocations": {str(off): bits for off, bits in sorted(ghost.items())}}

    chunks = {"dynamic": with_ghost(reply.chunk, allocations)}
    if reply.reserved is not None:
        chunks["reserved"] = with_ghost(reply.reserved, reserved_allocations or {})
    return {"layout": layout, "pcpu_nr_empty_pop_pages": reply.pcpu_nr_empty_pop_pages, "chunks": chunks}


def ghost_after(allocations: dict[int, int], op: Op, bit_off: int | None) -> dict[int, int]:
    """The ghost allocations after ``op`` returned ``bit_off``."""
    after = dict(allocations)
    if isinstance(op, Alloc) and bit_off is not None:
        after[bit_off] = op.bits
    elif isinstance(op, Free):
        after.pop(op.bit_off, None)
    return after


@dataclass(frozen=True)
class PathEnd:
    """The last step of a replayed path: what it returned, the dump after it, its findings (step = path length - 1)."""

    result: StepResult | None  # None when the driver ended during the step
    dump: dict[str, object] | None
    findings: tuple[Finding, ...]


def symbolized_report(build: Build, geometry: Geometry, ops: tuple[Op, ...]) -> str:
    """The sanitizer report of ``ops`` replayed from a new chunk, with source lines ("" if none)."""
    process = DriverProcess(build.executable, symbolize=True)
    _, crash = process.run([init_command(geometry), *map(command, ops)])
    process.close()
    return "" if crash is None else crash.report


def run_paths(build: Build, root: Geometry, parent: dict[int, int], paths: list[tuple[Op, ...]]) -> list[PathEnd]:
    """Replay each path from a new chunk of ``root``, all in as few round trips as the driver survives.

    Sanitizer reports are not symbolized here (many paths may end in one);
    ``symbolized_report`` gives the report with source lines.

    Every path shares its prefix but the last op, whose ghost allocations
    are ``parent``; the paths' ops are valid (the caller checked them).
    """
    ends: list[PathEnd] = []
    while len(ends) < len(paths):
        todo = paths[len(ends):]
        process = DriverProcess(build.executable, symbolize=False)
        commands = [c for path in todo for c in (init_command(root), *(command(op) for op in path))]
        replies, crash = process.run(commands)
        process.close()
        pos = 0
        for path in todo:
            last = pos + len(path)
            if last >= len(replies):
                step = len(path) - 1
                assert crash is not None
                ends.append(PathEnd(None, None, (Finding(step, "sanitizer", crash.summary(), crash.report),)))
                break
            reply = parse_reply(build.layout, replies[last])
            op = path[-1]
            bit_off = reply.ret if isinstance(op, Alloc) and reply.ret >= 0 else None
            warnings = tuple(Finding(len(path) - 1, "warning", w) for w in reply.warnings)
            ends.append(PathEnd(StepResult(op, bit_off, ()), make_dump(build.layout, reply, ghost_after(parent, op, bit_off)),
                                warnings))
            pos = last + 1
    return ends


@dataclass(frozen=True)
class TraceRun:
    """One trace replayed from a new chunk: each step's result and dump, and the sanitizer report that ended it."""

    steps: list[tuple[StepResult, dict[str, object]]]
    crash: Finding | None


def run_traces(build: Build, geometry: Geometry, traces: list[list[Op]]) -> list[TraceRun]:
    """Replay each trace from a new chunk of ``geometry``, as many per round trip as fit a batch.

    The ops must be valid (generated on the model); a sanitizer report ends
    its trace (not symbolized: see ``symbolized_report``), and the traces
    after it go to a fresh driver.
    """
    runs: list[TraceRun] = []
    while len(runs) < len(traces):
        todo = traces[len(runs):]
        process = DriverProcess(build.executable, symbolize=False)
        replies, crash = process.run([c for ops in todo for c in (init_command(geometry), *map(command, ops))])
        process.close()
        pos = 0
        for ops in todo:
            allocations: dict[int, int] = {}
            steps = []
            for i, op in enumerate(ops):
                if pos + 1 + i >= len(replies):
                    assert crash is not None
                    runs.append(TraceRun(steps, Finding(i, "sanitizer", crash.summary(), crash.report)))
                    break
                reply = parse_reply(build.layout, replies[pos + 1 + i])
                bit_off = reply.ret if isinstance(op, Alloc) and reply.ret >= 0 else None
                allocations = ghost_after(allocations, op, bit_off)
                steps.append((StepResult(op, bit_off, ()), make_dump(build.layout, reply, allocations)))
            else:
                runs.append(TraceRun(steps, None))
                pos += 1 + len(ops)
                continue
            break
    return runs


@dataclass
class KernelChunk:
    """One chunk of a C build, driven op by op."""

    build: Build
    geometry: Geometry
    init: Init = field(default_factory=ChunkInit)

    def __post_init__(self) -> None:
        self.layout = self.build.layout
        self.allocations: dict[int, int] = {}
        self.reserved_allocations: dict[int, int] = {}
        self.hidden: frozenset[tuple[bool, int]] = frozenset()  # (reserved chunk?, bit offset) of the hidden runs
        if isinstance(self.init, FirstChunkInit):
            if self.layout == "seed":
                raise KernelInitError("the 2017 posting hides its static region in pcpu_setup_first_chunk itself,"
                                      " which the C harness does not build: check its first chunk on the model (v1)")
            first = c_first_chunk(self.init, self.geometry.page_size)
            if self.build.nr_pages != first.unit_pages:
                raise KernelInitError(f"this first chunk needs a build of {first.unit_pages} unit pages,"
                                      f" not {self.build.nr_pages}")
            self.allocations = dict(first.hidden["dynamic"])
            self.reserved_allocations = dict(first.hidden.get("reserved", {}))
            self.hidden = frozenset({(False, off) for off in self.allocations} |
                                    {(True, off) for off in self.reserved_allocations})
        self.steps = 0
        self.findings: list[Finding] = []
        self.process: DriverProcess | None = DriverProcess(self.build.executable)
        self.state = self._send([init_command(self.geometry, self.init)], step=-1)[0]

    # -- the Implementation interface ----------------------------------------------

    def apply(self, op: Op) -> StepResult:
        self._check(op)
        reply = self._send([command(op)], step=self.steps)[0]
        self.steps += 1
        return self._record(op, reply)

    def dump(self) -> dict[str, object]:
        return make_dump(self.layout, self.state, self.allocations, self.reserved_allocations)

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None

    # -- internals ---------------------------------------------------------------------

    def _send(self, commands: list[str], step: int) -> list[Reply]:
        if self.process is None:
            raise DriverGone("the driver ended at an earlier step (a sanitizer report); the C state is undefined")
        replies, crash = self.process.run(commands)
        if crash is not None:
            self._crashed(crash, step + crash.index)
        parsed = [parse_reply(self.layout, line) for line in replies]
        for offset, reply in enumerate(parsed):
            self.findings += [Finding(step + offset, "warning", w) for w in reply.warnings]
        return parsed

    def _crashed(self, crash: Crash, step: int) -> None:
        self.findings.append(Finding(step, "sanitizer", crash.summary(), crash.report))
        assert self.process is not None
        self.process.close()
        self.process = None
        raise DriverGone(f"step {step}: {crash.summary()}")

    def _record(self, op: Op, reply: Reply) -> StepResult:
        self.state = reply
        bit_off = reply.ret if isinstance(op, Alloc) and reply.ret >= 0 else None
        if op.reserved:
            self.reserved_allocations = ghost_after(self.reserved_allocations, op, bit_off)
        else:
            self.allocations = ghost_after(self.allocations, op, bit_off)
        return StepResult(op, bit_off, ())

    def _check(self, op: Op) -> None:
        check_op(self.geometry, self.dump(), op, self.hidden)


def check_op(geometry: Geometry, dump: dict[str, object], op: Op,
             hidden: frozenset[tuple[bool, int]] = frozenset()) -> None:
    """What a caller of the allocator guarantees in the state ``dump`` (as Reference's checks): OpError if not.

    ``hidden``: the (reserved chunk?, bit offset) of the runs a first chunk hides, which no caller frees.
    """
    chunks = dump["chunks"]
    assert isinstance(chunks, dict)
    if op.reserved and "reserved" not in chunks:
        raise OpError("a reserved operation needs a first_chunk init with reserved_size > 0")
    chunk = chunks["reserved"] if op.reserved else dynamic_chunk(dump)
    if isinstance(op, Free) and (op.reserved, op.bit_off) in hidden:
        raise OpError(f"free bit_off={op.bit_off}: that run is hidden by pcpu_alloc_first_chunk, not allocated")
    if isinstance(op, Free) and str(op.bit_off) not in chunk["allocations"]:
        live = sorted(int(k) for k in chunk["allocations"] if (op.reserved, int(k)) not in hidden)
        raise OpError(f"free bit_off={op.bit_off}: no live allocation starts there (live: {live})")
    if isinstance(op, (Populate, Depopulate)) and chunk["immutable"]:
        raise OpError("the first chunk is immutable: no [de]population allowed")
    if isinstance(op, (Populate, Depopulate)) and not 0 <= op.page_start < op.page_end <= geometry.nr_pages:
        raise OpError(f"pages [{op.page_start}, {op.page_end}) must lie in"
                      f" [0, {geometry.nr_pages}) and not be empty")
    if isinstance(op, Depopulate):
        B = geometry.block_bits
        if "1" in str(chunk["alloc_map"])[op.page_start * B:op.page_end * B]:
            raise OpError(f"depopulate pages [{op.page_start}, {op.page_end}): they hold allocated bits;"
                          " the allocator only depopulates free pages")


def build_for(source: KernelSource, geometry: Geometry, init: Init) -> Build:
    """The build (cached) that a chunk of ``geometry`` and ``init`` runs on."""
    return build(source, geometry.block_bits, build_pages(geometry, init))


def open_chunk(source: KernelSource, geometry: Geometry, init: Init | None = None) -> KernelChunk:
    """Build ``source`` for ``geometry`` and ``init`` (cached) and start a chunk."""
    init = init or ChunkInit()
    return KernelChunk(build_for(source, geometry, init), geometry, init)
