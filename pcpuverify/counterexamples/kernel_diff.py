"""Differential runs: a C build of mm/percpu.c against a model variant, step by step on seeded random traces.

Each trace is a random walk generated on the model (``model.random_ops``,
so every op is one a caller could issue there), replayed on the C in one
round trip, and compared after every step: the value the op returned
(the alloc's bit offset) and every field the two dumps name alike
(``kernel/schema.py``: for the ``seed`` layout that is all of them; for a
later release the renamed hint fields are not compared, and the report
lists the fields that were).  The first diverging step ends the trace; the
trace is cut there, and the first divergence is shrunk (``shrink_divergence``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pcpuverify.counterexamples.minimize import FreeOf, Item
from pcpuverify.kernel.build import Build, build
from pcpuverify.kernel.harness import TraceRun, run_traces
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.bitmap import OutOfBounds
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, ChunkInit, Free, Op
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.state import dynamic_chunk

ModelStep = tuple[int | None, str, dict[str, object]]  # return value, stray accesses ("", "read", "write"), dump after


def _stray(accesses: tuple[OutOfBounds, ...]) -> str:
    """The model's access log of a step in one word: "write" if it wrote outside a map, "read" if it only read, else ""."""
    if any(a.write for a in accesses):
        return "write"
    return "read" if accesses else ""


@dataclass(frozen=True)
class Divergence:
    """The first step where the C and the model differ, and how."""

    ops: tuple[Op, ...]  # the trace up to and including the diverging step
    field: str
    model: object
    c: object

    @property
    def step(self) -> int:
        return len(self.ops) - 1


@dataclass
class DiffReport:
    variant: str
    layout: str
    geometry: Geometry
    traces: int = 0
    steps: int = 0  # steps compared: up to the first divergence, or the sanitizer report both agree on
    identical: int = 0
    sanitizer_agreed: int = 0  # of the identical: ended at a step both report outside a map (model log, ASan)
    compared: tuple[str, ...] = ()
    first: Divergence | None = None
    divergent: list[Divergence] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        first = None if self.first is None else {
            "step": self.first.step, "field": self.first.field, "model": self.first.model, "c": self.first.c,
            "ops": [op.describe() for op in self.first.ops]}
        return {"variant": self.variant, "layout": self.layout, "geometry": self.geometry.name,
                "traces": self.traces, "steps": self.steps, "identical": self.identical,
                "sanitizer_agreed": self.sanitizer_agreed,
                "compared_fields": list(self.compared), "first_divergence": first}


def _difference(model: dict[str, object], c: dict[str, object]) -> tuple[str, object, object] | None:
    """The first field (in the model's order) the two dumps name alike and disagree on."""
    if model["pcpu_nr_empty_pop_pages"] != c["pcpu_nr_empty_pop_pages"]:
        return "pcpu_nr_empty_pop_pages", model["pcpu_nr_empty_pop_pages"], c["pcpu_nr_empty_pop_pages"]
    m_chunk, c_chunk = dynamic_chunk(model), dynamic_chunk(c)
    for name, value in m_chunk.items():
        if name not in c_chunk:
            continue
        if name == "md_blocks":
            for i, (mb, cb) in enumerate(zip(value, c_chunk[name])):
                for key in mb:
                    if key in cb and mb[key] != cb[key]:
                        return f"md_blocks[{i}].{key}", mb[key], cb[key]
        elif value != c_chunk[name]:
            return name, value, c_chunk[name]
    return None


def compared_fields(model: dict[str, object], c: dict[str, object]) -> tuple[str, ...]:
    m_chunk, c_chunk = dynamic_chunk(model), dynamic_chunk(c)
    blocks = [f"md_blocks[].{k}" for k in m_chunk["md_blocks"][0] if k in c_chunk["md_blocks"][0]]
    return ("pcpu_nr_empty_pop_pages", *(n for n in m_chunk if n in c_chunk and n != "md_blocks"), *blocks)


def model_run(variant: str, geometry: Geometry, length: int, rng: random.Random) -> tuple[list[Op], list[ModelStep]]:
    """A random walk of ``length`` ops on the model: the ops, and each step's return value, stray accesses and dump."""
    ref = Reference(variant, geometry, ChunkInit())
    ops, steps = [], []
    for _ in range(length):
        op = random_op(ref, rng)
        step = ref.apply(op)
        ops.append(op)
        steps.append((step.bit_off, _stray(step.accesses), ref.dump()))
    return ops, steps


def compare(ops: list[Op], model: list[ModelStep], c: TraceRun) -> Divergence | None:
    """The first step where the C run differs from the model's, or None.

    Out of bounds.  The model logs the whole range each bitmap function may
    touch, C reads word by word and stops early: a read the model logs may
    not happen in C.  A write it logs does.  So: a sanitizer report at a
    step where the model logged any access outside a map is agreement, and
    the comparison ends there (the C state is undefined after it); a report
    where the model logged none diverges; so does a step where the model
    wrote outside a map and ASan reported nothing (the comparison cannot
    go on past an undefined state).
    """
    for i, ((m_off, m_stray, m_dump), (c_step, c_dump)) in enumerate(zip(model, c.steps)):
        if m_stray == "write":
            return Divergence(tuple(ops[:i + 1]), "sanitizer", "a write outside a bitmap", "no report")
        if m_off != c_step.bit_off:
            return Divergence(tuple(ops[:i + 1]), "return value (bit offset)", m_off, c_step.bit_off)
        found = _difference(m_dump, c_dump)
        if found is not None:
            return Divergence(tuple(ops[:i + 1]), *found)
    if c.crash is not None and not model[c.crash.step][1]:
        return Divergence(tuple(ops[:c.crash.step + 1]), "sanitizer", "no access outside a bitmap", c.crash.summary)
    return None


def _model_replay(variant: str, geometry: Geometry, items: list[tuple[int, Item]]) -> tuple[list[Op], list[ModelStep]]:
    """A candidate's concrete ops and model steps: frees get the offset their alloc returned in it, or are dropped."""
    ref = Reference(variant, geometry, ChunkInit())
    returned: dict[int, int] = {}
    ops: list[Op] = []
    steps: list[ModelStep] = []
    for sid, item in items:
        if isinstance(item, FreeOf):
            if item.alloc not in returned:
                continue
            op: Op = Free(returned.pop(item.alloc))
        else:
            op = item
        try:
            step = ref.apply(op)
        except OpError:
            continue
        if isinstance(op, Alloc) and step.bit_off is not None:
            returned[sid] = step.bit_off
        ops.append(op)
        steps.append((step.bit_off, _stray(step.accesses), ref.dump()))
    return ops, steps


def shrink_divergence(build_: Build, variant: str, geometry: Geometry, found: Divergence) -> Divergence:
    """``found`` with operations removed (each free with its alloc) while the C and the model still differ in the same field.

    As ``kernel_shrink.shrink`` on the C: 1-minimal under removing one
    operation; frees are linked to their allocs on the model.
    """
    ref = Reference(variant, geometry, ChunkInit())
    live: dict[int, int] = {}
    items: list[tuple[int, Item]] = []
    for sid, op in enumerate(found.ops):
        items.append((sid, FreeOf(live.pop(op.bit_off)) if isinstance(op, Free) and op.bit_off in live else op))
        bit_off = ref.apply(op).bit_off
        if isinstance(op, Alloc) and bit_off is not None:
            live[bit_off] = sid
    best, changed = found, True
    while changed:
        changed = False
        for i in range(len(items)):
            sid = items[i][0]
            candidate = [it for j, it in enumerate(items)
                         if j != i and not (isinstance(it[1], FreeOf) and it[1].alloc == sid)]
            ops, steps = _model_replay(variant, geometry, candidate)
            again = compare(ops, steps, run_traces(build_, geometry, [ops])[0]) if ops else None
            if again is not None and again.field == found.field and len(again.ops) < len(best.ops):
                items, best, changed = candidate, again, True
                break
    return best


def diff(source: KernelSource, variant: str, geometry: Geometry, traces: int, length: int, seed: int,
         keep: int = 1, per_batch: int = 100) -> DiffReport:
    """``traces`` random traces of ``length`` ops; the report keeps the first ``keep`` divergences, the first shrunk."""
    rng = random.Random(seed)
    build_ = build(source, geometry.block_bits, geometry.nr_pages)
    report = DiffReport(variant, build_.layout, geometry)
    for start in range(0, traces, per_batch):
        runs = [model_run(variant, geometry, length, rng) for _ in range(min(per_batch, traces - start))]
        c_runs = run_traces(build_, geometry, [ops for ops, _ in runs])
        if not report.compared and c_runs[0].steps:
            report.compared = compared_fields(runs[0][1][0][2], c_runs[0].steps[0][1])
        for (ops, model), c in zip(runs, c_runs):
            found = compare(ops, model, c)
            report.traces += 1
            report.steps += (len(c.steps) + (c.crash is not None)) if found is None else found.step + 1
            if found is None:
                report.identical += 1
                report.sanitizer_agreed += c.crash is not None
            else:
                report.first = report.first or found
                if len(report.divergent) < keep:
                    report.divergent.append(found)
    if report.first is not None:
        report.first = shrink_divergence(build_, variant, geometry, report.first)
    return report
