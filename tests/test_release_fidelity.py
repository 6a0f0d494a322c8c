"""Fidelity of the release variants: each against the C build of its release's own mm/percpu.c (pcpuverify.kernel).

10,000 seeded random traces of 30 ops per variant, 5,000 at 2x8 and 5,000 at
3x64, generated on the model (every op one a caller could issue there) and
replayed on the C in batches.  After every step the two must agree on the
value returned and on the whole dump, key for key (only the top-level
``variant``/``layout`` label differs).  A sanitizer report ends a C trace: the
model must have logged an access outside a bitmap at that very step.

Without the harness (``pcpuverify.kernel``) this module fails at import: a
fidelity test that cannot run must not pass.  Debian's 6.1 and 6.12
(``python tests/kernels/debian.py``, which CI runs) are required: ``mainline``
(7.1.3) has the same allocator core, and they are the releases every clone
can have.  A mirror's release whose file is absent is skipped with the path
to restore (tests/kernels/*/SOURCE): those files cannot be committed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pcpuverify.kernel.build import build
from pcpuverify.kernel.harness import TraceRun, run_traces
from pcpuverify.kernel.source import KernelSource, load_source
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.linux_5_4 import PcpuBlockMd
from pcpuverify.model.mainline import Mainline
from pcpuverify.model.ops import ChunkInit, Op
from pcpuverify.model.random_ops import random_op
from pcpuverify.model.reference import Reference
from pcpuverify.model.variants import VARIANTS

KERNELS = Path(__file__).with_name("kernels")
# (variant, the C it must equal)
PAIRS = (
    ("linux-4.14", "linux-4.14.5"),
    ("linux-5.4", "linux-5.4.286"),
    ("mainline", "linux-7.1.3"),
    ("mainline", "debian-6.1"),
    ("mainline", "debian-6.12"),
)
REQUIRED = ("debian-6.1", "debian-6.12")
GEOMETRIES = ("2x8", "3x64")
TRACES_PER_GEOMETRY = 5000
LENGTH = 30
BATCH = 250

ModelStep = tuple[int | None, bool, dict[str, object]]  # returned bit offset, any stray access, dump after


def kernel(name: str) -> KernelSource:
    folder = KERNELS / name
    if name in REQUIRED:
        assert (folder / "mm" / "percpu.c").is_file(), f"{folder} is absent: run python tests/kernels/debian.py"
    elif not (folder / "mm" / "percpu.c").is_file():
        pytest.skip(f"{folder}/mm/percpu.c is absent: restore it as {folder}/SOURCE says")
    return load_source(folder)


def model_run(variant: str, geometry: Geometry, rng: random.Random) -> tuple[list[Op], list[ModelStep]]:
    ref = Reference(variant, geometry, ChunkInit())
    ops, steps = [], []
    for _ in range(LENGTH):
        op = random_op(ref, rng)
        result = ref.apply(op)
        ops.append(op)
        steps.append((result.bit_off, bool(result.accesses), ref.dump()))
    return ops, steps


def _unlabelled(dump: dict[str, object], label: str) -> dict[str, object]:
    return {k: v for k, v in dump.items() if k != label}


def first_difference(model: list[ModelStep], c: TraceRun) -> str | None:
    """Where the C run first differs from the model's, or None if they agree at every step."""
    for i, ((m_off, _, m_dump), (c_step, c_dump)) in enumerate(zip(model, c.steps)):
        if m_off != c_step.bit_off:
            return f"step {i}: returned {m_off} on the model, {c_step.bit_off} on the C"
        m, k = _unlabelled(m_dump, "variant"), _unlabelled(c_dump, "layout")
        if m != k:
            return f"step {i}: dumps differ\nmodel {m}\nC     {k}"
    if c.crash is None:
        return None if len(c.steps) == len(model) else f"the C ran {len(c.steps)} of {len(model)} steps"
    if not model[c.crash.step][1]:
        return f"step {c.crash.step}: {c.crash.summary} on the C, no access outside a bitmap on the model"
    return None


def differences(variant: str, release: str | KernelSource, geometry: Geometry, traces: int,
                seed: int) -> tuple[int, list[str]]:
    """(traces identical, the first difference of each trace that differs); ``release`` a folder name or a source."""
    source = kernel(release) if isinstance(release, str) else release
    build_ = build(source, geometry.block_bits, geometry.nr_pages)
    rng = random.Random(seed)
    identical, found = 0, []
    for start in range(0, traces, BATCH):
        runs = [model_run(variant, geometry, rng) for _ in range(min(BATCH, traces - start))]
        for (ops, model), c in zip(runs, run_traces(build_, geometry, [ops for ops, _ in runs])):
            diff = first_difference(model, c)
            if diff is None:
                identical += 1
            else:
                found.append(f"{[op.describe() for op in ops]}\n{diff}")
    return identical, found


@pytest.mark.slow
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize(("variant", "release"), PAIRS)
def test_identical_to_the_c_of_its_release(variant: str, release: str, geometry: str) -> None:
    identical, found = differences(variant, release, Geometry.parse(geometry), TRACES_PER_GEOMETRY, seed=0)
    assert not found, f"{len(found)} of {TRACES_PER_GEOMETRY} traces differ; the first:\n{found[0]}"
    assert identical == TRACES_PER_GEOMETRY


class _EndFixed(Mainline):
    """mainline with the free path's chunk_md update given a chunk offset for ``end``: not what its C does."""

    variant = "mainline-end-fixed"

    def pcpu_block_update(self, block: PcpuBlockMd, start: int, end: int) -> None:
        if block.nr_bits != self.PCPU_BITMAP_BLOCK_BITS and end < start:
            end += start - start % self.PCPU_BITMAP_BLOCK_BITS
        super().pcpu_block_update(block, start, end)


def test_the_comparison_sees_a_one_expression_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variant that differs from mainline in one expression of the hint code diverges from the C: the test above
    can fail."""
    monkeypatch.setitem(VARIANTS, _EndFixed.variant, _EndFixed)
    identical, found = differences(_EndFixed.variant, "debian-6.12", Geometry.parse("2x8"), 500, seed=0)
    assert found and identical < 500
