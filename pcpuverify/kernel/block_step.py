"""One block-level or chunk-hint function of a C build, on a state set from outside: the C twin of
``proofs/blocks/release_roles.run_release_on_model`` and of ``release_compose``'s replay.

A block contract's counterexample is a block, not a trace from a new chunk,
so it cannot be replayed op by op.  The driver's ``m`` and ``b`` commands
(shim/driver.c) set the chunk's ``alloc_map`` and each ``pcpu_block_md``
(and ``chunk_md``) of a new chunk, then ``u``, ``v`` or ``w`` call the
kernel's own ``pcpu_block_update_hint_alloc``, ``pcpu_block_update_hint_free``
or ``pcpu_block_update_scan`` (the blocks after are the kernel's answer),
or ``r`` its ``pcpu_chunk_refresh_hint`` (``chunk_md`` after is).
Only the scan_hint layouts (5.2 on) have these commands.
"""

from __future__ import annotations

from dataclasses import astuple

from pcpuverify.kernel.build import build
from pcpuverify.kernel.harness import parse_reply
from pcpuverify.kernel.process import DriverProcess
from pcpuverify.kernel.source import KernelSource
from pcpuverify.model.linux_5_4 import PcpuBlockMd

CALLS = {"alloc": "u", "free": "v", "scan": "w"}  # a role's kind -> the driver's command
SEED_AND_4_14 = ("seed", "4.14")
BLOCK_CALL_PAGES = 3  # proofs/blocks/release_roles.block_call: the block between two neighbours


class BlockStepError(RuntimeError):
    """The C build cannot run a block step (its layout has no scan_hint blocks, or the driver ended)."""


def _call_on_state(source: KernelSource, block_bits: int, alloc_map: int, blocks: list[PcpuBlockMd],
                   chunk_md: PcpuBlockMd, call: str) -> dict[str, object]:
    """The chunk's dump after the driver's ``call`` on a new chunk of ``len(blocks)`` pages holding ``alloc_map``,
    ``blocks`` and ``chunk_md``."""
    if source.layout in SEED_AND_4_14:
        raise BlockStepError(f"{source.percpu_c}: the {source.layout} layout has no scan_hint blocks")
    done = build(source, block_bits, len(blocks))
    nr_bits = block_bits * len(blocks)
    commands = ["i", "m " + "".join("1" if (alloc_map >> i) & 1 else "0" for i in range(nr_bits)),
                *(f"b {i} " + " ".join(map(str, astuple(md))) for i, md in enumerate(blocks)),
                "b -1 " + " ".join(map(str, astuple(chunk_md))), call]
    process = DriverProcess(done.executable)
    try:
        replies, crash = process.run(commands)
    finally:
        process.close()
    if crash is not None:
        raise BlockStepError(f"the C driver ended at {commands[crash.index][:40]!r}: {crash.summary()}")
    return parse_reply(done.layout, replies[-1]).chunk


def c_block_step(source: KernelSource, block_bits: int, alloc_map: int, blocks: list[PcpuBlockMd],
                 chunk_md: PcpuBlockMd, kind: str, bit_off: int, bits: int) -> list[PcpuBlockMd]:
    """Every ``md_blocks[i]`` after the kernel's function ``kind`` (a role's kind) of ``[bit_off, bit_off + bits)``
    on a chunk of ``len(blocks)`` pages holding ``alloc_map``, ``blocks`` and ``chunk_md``."""
    after = _call_on_state(source, block_bits, alloc_map, blocks, chunk_md, f"{CALLS[kind]} {bit_off} {bits}")
    mds = after["md_blocks"]
    assert isinstance(mds, list)
    return [PcpuBlockMd(**md) for md in mds]


def c_chunk_md_after(source: KernelSource, block_bits: int, alloc_map: int, blocks: list[PcpuBlockMd],
                     chunk_md: PcpuBlockMd, call: str) -> PcpuBlockMd:
    """``chunk_md`` after the driver's ``call`` on such a chunk: ``r FULL`` (``pcpu_chunk_refresh_hint``) or
    ``v BIT_OFF BITS`` (``pcpu_block_update_hint_free``, the caller having cleared the area in ``alloc_map``)."""
    md = _call_on_state(source, block_bits, alloc_map, blocks, chunk_md, call)["chunk_md"]
    assert isinstance(md, dict)
    return PcpuBlockMd(**md)
