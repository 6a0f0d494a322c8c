"""Fixtures shared by the tests: the C oracle of the Linux bitmap primitives."""

from __future__ import annotations

import pytest
from c_oracle import LinuxBitmap, compile_linux_bitmap

from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.variants import VARIANTS
from pcpuverify.symbolic.encode import SymPercpu
from pcpuverify.symbolic.subjects import SUBJECTS, Subject, inherited_layout, register


@pytest.fixture(scope="session")
def linux_bitmap(tmp_path_factory: pytest.TempPathFactory) -> LinuxBitmap:
    """The Linux 4.12 bitmap primitives, compiled once per test session (fails, never skips, without gcc)."""
    return compile_linux_bitmap(tmp_path_factory.mktemp("linux_bitmap"))


def register_for_test(monkeypatch: pytest.MonkeyPatch, name: str, model: type[PcpuAllocator],
                      encoding: type[SymPercpu]) -> None:
    """Register a test's mutant as a subject until the test ends (monkeypatch removes both entries)."""
    monkeypatch.setitem(SUBJECTS, name, Subject(name, model, encoding, None))  # register() fills in the rest
    monkeypatch.setitem(VARIANTS, name, model)
    register(name, model, encoding, inherited_layout(model))
