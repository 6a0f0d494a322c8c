"""Fixtures shared by the tests: the C oracle of the Linux bitmap primitives."""

from __future__ import annotations

import pytest
from c_oracle import LinuxBitmap, compile_linux_bitmap


@pytest.fixture(scope="session")
def linux_bitmap(tmp_path_factory: pytest.TempPathFactory) -> LinuxBitmap:
    """The Linux 4.12 bitmap primitives, compiled once per test session (fails, never skips, without gcc)."""
    return compile_linux_bitmap(tmp_path_factory.mktemp("linux_bitmap"))
