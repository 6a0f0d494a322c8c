"""The kernel's own bitmap code as a test oracle: compile tests/linux_bitmap.c with gcc, call it with ctypes.

Bitmaps cross the boundary as Python integers (bit i of the int = bit i of
the map).  Every call copies the integer into a zeroed buffer of
``BUFFER_BITS`` bits -- far larger than any bitmap the tests draw -- so the
C code's reads past a bitmap's logical end see zeroed memory, as the
kernel's zero-allocated maps (``pcpu_mem_zalloc``) would, and its writes
there land in the buffer, where the caller can look at them.

``word`` is the kernel's pointer arithmetic: ``map + word`` as in
``pcpu_index_alloc_map()`` (``chunk->alloc_map + index * PCPU_BITMAP_BLOCK_SIZE / BITS_PER_LONG``).

If gcc is missing, the fixture *fails* the tests: the oracle is the point.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

C_SOURCE = Path(__file__).with_name("linux_bitmap.c")
BITS_PER_LONG = 8 * ctypes.sizeof(ctypes.c_ulong)
BUFFER_WORDS = 16
BUFFER_BITS = BUFFER_WORDS * BITS_PER_LONG
_WORD_MASK = (1 << BITS_PER_LONG) - 1

_UL = ctypes.c_ulong
_UINT = ctypes.c_uint
_INT = ctypes.c_int
_PTR = ctypes.POINTER(ctypes.c_ulong)

# name: (restype, argtypes after the map pointer; None = the map comes second)
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "find_next_bit": (_UL, [_UL, _UL]),
    "find_next_zero_bit": (_UL, [_UL, _UL]),
    "find_first_bit": (_UL, [_UL]),
    "find_first_zero_bit": (_UL, [_UL]),
    "find_last_bit": (_UL, [_UL]),
    "bitmap_set": (None, [_UINT, _UINT]),
    "bitmap_clear": (None, [_UINT, _UINT]),
    "bitmap_weight": (_INT, [_UINT]),
    "bitmap_fill": (None, [_UINT]),
    "bitmap_find_next_zero_area": (_UL, [_UL, _UL, _UINT, _UL]),
    "bitmap_find_next_zero_area_off": (_UL, [_UL, _UL, _UINT, _UL, _UL]),
}


class LinuxBitmap:
    """The compiled C primitives; each method returns the C result and the buffer afterwards."""

    def __init__(self, library: Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self.lib, name)
            fn.restype = restype
            fn.argtypes = [_PTR, *argtypes]
        # the single-bit helpers take (nr, addr), as the kernel's do
        for name, restype in (("test_bit", _INT), ("set_bit", None), ("clear_bit", None)):
            fn = getattr(self.lib, name)
            fn.restype = restype
            fn.argtypes = [_INT, _PTR]

    # -- marshalling ------------------------------------------------------------

    @staticmethod
    def _buffer(value: int) -> ctypes.Array[ctypes.c_ulong]:
        if not 0 <= value < 1 << BUFFER_BITS:
            raise ValueError(f"bitmap value must fit in {BUFFER_BITS} bits")
        buf = (ctypes.c_ulong * BUFFER_WORDS)()
        for i in range(BUFFER_WORDS):
            buf[i] = (value >> (i * BITS_PER_LONG)) & _WORD_MASK
        return buf

    @staticmethod
    def _value(buf: ctypes.Array[ctypes.c_ulong]) -> int:
        return sum(int(buf[i]) << (i * BITS_PER_LONG) for i in range(BUFFER_WORDS))

    def call(self, name: str, value: int, *args: int, word: int = 0) -> tuple[int | None, int]:
        """``name(map + word, *args)``: the result and the whole buffer afterwards."""
        buf = self._buffer(value)
        ptr = ctypes.cast(ctypes.byref(buf, word * ctypes.sizeof(ctypes.c_ulong)), _PTR)
        result = getattr(self.lib, name)(ptr, *args)
        return result, self._value(buf)

    def call_nr(self, name: str, nr: int, value: int, word: int = 0) -> tuple[int | None, int]:
        """``name(nr, map + word)`` for test_bit/set_bit/clear_bit."""
        buf = self._buffer(value)
        ptr = ctypes.cast(ctypes.byref(buf, word * ctypes.sizeof(ctypes.c_ulong)), _PTR)
        result = getattr(self.lib, name)(nr, ptr)
        return result, self._value(buf)


def compile_linux_bitmap(out_dir: Path) -> LinuxBitmap:
    """gcc -shared -fPIC -O1 tests/linux_bitmap.c; fails the test (never skips) without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is required to build the Linux bitmap oracle (tests/linux_bitmap.c) but is not on PATH")
    library = out_dir / "linux_bitmap.so"
    proc = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O1", "-Wall", "-o", str(library), str(C_SOURCE)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"gcc could not build tests/linux_bitmap.c:\n{proc.stderr}")
    return LinuxBitmap(library)


