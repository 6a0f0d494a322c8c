"""Build a kernel's allocator core with the shim and the driver: gcc, AddressSanitizer and UBSan, cached on disk.

One translation unit, in this order: ``shim/pcpu_shim.h``, the source's
own ``mm/percpu-internal.h``, the core of ``mm/percpu.c`` as
``source.KernelSource.core`` slices it (with ``#line`` markers, so that
compiler errors and sanitizer reports name the kernel file's own lines),
then ``shim/driver.c``.  The kernel text is never edited.

Flags: ``-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined
-fno-omit-frame-pointer``: the first sanitizer report ends the driver
process, and the harness counts it as a finding of the step it was on.
The executable is cached under ``$PCPU_VERIFY_BUILD_CACHE`` (default
``~/.cache/pcpu-verify/builds``) in a folder named by the sha256 of
everything that goes into it: the sources, the shim, the driver, the
geometry and the flags.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pcpuverify.kernel.source import KernelSource, SourceError

SHIM_DIR = Path(__file__).with_name("shim")
CFLAGS = ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
          "-fno-omit-frame-pointer", "-Wno-unused-function", "-Wno-unused-variable")
LAYOUT_MACROS = {
    "seed": "PCPU_LAYOUT_SEED",
    "4.14": "PCPU_LAYOUT_4_14",
    "5.2": "PCPU_LAYOUT_5_2",
    "5.9": "PCPU_LAYOUT_5_9",
    "5.14": "PCPU_LAYOUT_5_14",
}
MAX_WORD_BITS = 64


class BuildError(SourceError):
    """gcc refused the source; the message carries its first error line."""


@dataclass(frozen=True)
class Build:
    """A built driver: the executable, the layout it was built for, and the geometry."""

    executable: Path
    layout: str
    block_bits: int
    nr_pages: int


def cache_root() -> Path:
    return Path(os.environ.get("PCPU_VERIFY_BUILD_CACHE", Path.home() / ".cache" / "pcpu-verify" / "builds"))


def word_bits(block_bits: int) -> int:
    """BITS_PER_LONG of the build: each bitmap word carries min(block bits, 64) bits (shim/pcpu_shim.h)."""
    return min(block_bits, MAX_WORD_BITS)


def translation_unit(source: KernelSource) -> str:
    """The C file gcc compiles: shim, percpu-internal.h, the core with #line markers, the driver."""
    parts = ['#include "pcpu_shim.h"\n', '#include "percpu-internal.h"\n']
    for line, text in [source.core(), *source.extra_functions()]:
        parts.append(f'#line {line} "mm/percpu.c"\n{text}')
    parts.append('#line 1 "pcpuverify/kernel/shim/driver.c"\n')
    parts.append((SHIM_DIR / "driver.c").read_text(encoding="utf-8"))
    return "".join(parts)


def _defines(source: KernelSource, block_bits: int, nr_pages: int) -> list[str]:
    return [
        f"-D{LAYOUT_MACROS[source.layout]}",
        *(f"-D{feature}" for feature in source.features),
        f"-DPCPU_PAGE_SIZE={block_bits * 4}",
        f"-DPCPU_WORD_BITS={word_bits(block_bits)}",
        f"-DPCPU_NR_PAGES={nr_pages}",
    ]


def _key(source: KernelSource, unit: str, defines: list[str]) -> str:
    h = hashlib.sha256()
    shim = (SHIM_DIR / "pcpu_shim.h").read_text(encoding="utf-8")
    for part in (source.sha256, unit, shim, " ".join(defines), " ".join(CFLAGS)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def first_error(stderr: str) -> str:
    """The first line of gcc's output that says ``error`` (the linker's own line naming the symbol before its
    ``collect2`` summary), else its first line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if ("error" in line and not line.startswith("collect2"))
                 or "undefined reference" in line), lines[0] if lines else "gcc failed")


def build(source: KernelSource, block_bits: int, nr_pages: int) -> Build:
    """The driver for ``source`` at ``nr_pages`` pages of ``block_bits`` bits, from the cache or freshly built."""
    layout = source.layout
    unit = translation_unit(source)
    defines = _defines(source, block_bits, nr_pages)
    folder = cache_root() / _key(source, unit, defines)
    executable = folder / "driver"
    if executable.is_file():
        return Build(executable, layout, block_bits, nr_pages)
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BuildError("gcc is needed to build mm/percpu.c but is not on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "percpu_core.c").write_text(unit, encoding="utf-8")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        out = Path(tmp) / "driver"
        proc = subprocess.run(
            [gcc, *CFLAGS, *defines, f"-I{SHIM_DIR}", f"-I{SHIM_DIR / 'include'}",
             f"-I{source.percpu_c.parent}", "-o", str(out), str(folder / "percpu_core.c")],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"{source.percpu_c}: does not compile: {first_error(proc.stderr)}")
        os.replace(out, executable)  # atomic: a concurrent build of the same key writes the same file
    return Build(executable, layout, block_bits, nr_pages)
