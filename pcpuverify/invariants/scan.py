"""Fresh scans of a bitmap, written from the definitions and not from the port, to judge the hints by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FreeRun:
    """A maximal run of clear bits ``[start, start + length)``."""

    start: int
    length: int


def bits_of(value: int, start: int, nbits: int) -> list[int]:
    return [(value >> (start + i)) & 1 for i in range(nbits)]


def free_runs(bits: list[int]) -> list[FreeRun]:
    """Every maximal run of zeros, left to right."""
    runs: list[FreeRun] = []
    i = 0
    while i < len(bits):
        if bits[i]:
            i += 1
            continue
        j = i
        while j < len(bits) and not bits[j]:
            j += 1
        runs.append(FreeRun(i, j - i))
        i = j
    return runs


def longest_free(bits: list[int]) -> int:
    return max((r.length for r in free_runs(bits)), default=0)


def leading_free(bits: list[int]) -> int:
    n = 0
    while n < len(bits) and not bits[n]:
        n += 1
    return n


def trailing_free(bits: list[int]) -> int:
    return leading_free(bits[::-1])


def first_zero(bits: list[int]) -> int:
    """Index of the first clear bit, ``len(bits)`` if none (as find_first_zero_bit)."""
    return next((i for i, b in enumerate(bits) if not b), len(bits))
