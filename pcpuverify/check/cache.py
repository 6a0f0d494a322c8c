"""The on-disk cache: entries written atomically, each behind its own lock, never trusted unless complete."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcpuverify.check.matrix import layout_obligations
from pcpuverify.check.obligation import GeometrySetting, LayoutSetting, Obligation, obligation_of
from pcpuverify.check.outcomes import CACHE_FORMAT
from pcpuverify.model.trace import trace_from_json, write_atomically
from pcpuverify.proofs.results import Result, Verdict


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    ignored: int = 0  # corrupt or foreign entries, recomputed
    written: int = 0


class Cache:
    """Results on disk, one JSON file per key, written atomically; never trusted without checking."""

    def __init__(self, directory: Path | None, warn: Callable[[str], None] = lambda message: None) -> None:
        self.directory = directory
        self.stats = CacheStats()
        self.warn = warn
        self.writable = directory is not None
        self.locks: dict[str, int] = {}  # key -> the open lock file this process holds

    def _cannot_write(self, e: OSError) -> None:
        self.writable = False
        self.warn(f"cannot write to the cache {self.directory} ({e.strerror or e}):"
                  " running without writing to it, so the next run recomputes what this one does")

    # One lock file per entry, ``<key>.lock``: a check that finds an entry missing takes its lock before
    # computing it, so that a second check on the same tree waits for the entry instead of recomputing it.
    def claim(self, key: str) -> bool:
        """Take the lock of ``key`` if no other process holds it; True too when the cache cannot be locked."""
        if not self.writable:
            return True  # no cache, or a read-only one: nothing to share, nothing to wait for
        assert self.directory is not None
        path = self.directory / f"{key}.lock"
        while True:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                self._cannot_write(e)
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # the holder before us unlinks the file before it unlocks: a lock on an unlinked file guards nothing
            try:
                current = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                current = False
            if current:
                self.locks[key] = fd
                return True
            os.close(fd)

    def wait(self, key: str, deadline: float | None) -> bool:
        """Take the lock of ``key`` once its holder lets go; False if ``deadline`` passes first."""
        while not self.claim(key):
            if deadline is not None and time.perf_counter() >= deadline:
                return False
            time.sleep(0.2)  # polled, not a blocking flock: the budget and Ctrl-C still apply
        return True

    def release(self, key: str) -> None:
        fd = self.locks.pop(key, None)
        if fd is None:
            return
        assert self.directory is not None
        try:
            (self.directory / f"{key}.lock").unlink()  # before unlocking: see claim
        except OSError:
            pass  # already gone (a cache cleared by hand): unlocking is all that is left
        os.close(fd)

    def release_all(self) -> None:
        for key in list(self.locks):
            self.release(key)

    def _write(self, path: Path, text: str) -> bool:
        """Write atomically; the first failure (a read-only cache) is one warning, then the run goes on uncached."""
        if not self.writable:
            return False
        assert self.directory is not None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(path, text)
        except OSError as e:
            self._cannot_write(e)
            return False
        return True

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.json"

    def get(self, key: str, parse: Callable[[Any], Any]) -> Any:
        """The parsed payload stored under ``key``, or None (missing, or ignored: corrupt, foreign, UNKNOWN)."""
        if self.directory is None:
            return None
        path = self._path(key)
        if not path.exists():
            self.stats.misses += 1
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not (isinstance(data, dict) and data.get("format") == CACHE_FORMAT and data.get("key") == key):
                raise ValueError("foreign entry")
            value = parse(data["payload"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            self.stats.ignored += 1
            return None
        self.stats.hits += 1
        return value

    def put(self, key: str, payload: Any) -> None:
        if self.directory is None:
            return
        if self._write(self._path(key), json.dumps({"format": CACHE_FORMAT, "key": key, "payload": payload})):
            self.stats.written += 1

    # the time each suite took last, and how often it failed: what --budget orders by
    def history(self) -> dict[str, Any]:
        if self.directory is None:
            return {}
        try:
            data = json.loads((self.directory / "history.json").read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_history(self, history: dict[str, Any]) -> None:
        if self.directory is None:
            return
        self._write(self.directory / "history.json", json.dumps(history, indent=1, sort_keys=True))


def result_to_json(r: Result) -> dict[str, Any]:
    return {**r.to_json(), "seconds": r.seconds}


def result_from_json(data: Any) -> Result:
    """The inverse of ``Result.to_json``; raises ValueError on anything else."""
    if not isinstance(data, dict):
        raise ValueError("a result must be an object")
    known = {"variant", "geometry", "invariant", "op", "result", "seconds", "detail", "trace", "cti", "depth"}
    for key in ("variant", "geometry", "invariant", "op"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"result: {key!r} must be a string")
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError("result: 'seconds' must be a number")
    depth = data.get("depth")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)):
        raise ValueError("result: 'depth' must be an integer")
    trace, cti = data.get("trace"), data.get("cti")
    if trace is not None:
        trace_from_json(trace)  # a TraceError is a ValueError
    if cti is not None and not isinstance(cti, dict):
        raise ValueError("result: 'cti' must be an object")
    return Result(data["variant"], data["geometry"], data["invariant"], data["op"], Verdict(data["result"]),
                  float(seconds), detail=str(data.get("detail", "")), trace=trace, cti=cti, depth=depth,
                  extra={k: v for k, v in data.items() if k not in known})


def _cached_results(payload: Any) -> list[Result]:
    """A cache entry's results, parsed; an UNKNOWN among them makes the whole entry foreign."""
    if not isinstance(payload, list):
        raise ValueError("results must be a list")
    results = [result_from_json(r) for r in payload]
    if any(r.verdict is Verdict.UNKNOWN for r in results):
        raise ValueError("UNKNOWN is never cached")
    return results


def _suite_payload(owed: list[Obligation], geometry: GeometrySetting) -> Callable[[Any], list[Result]]:
    """A suite's entry: results of its own subject and geometry, every row it owes (unless NONCONFORMANT)."""
    subjects = {key.subject for key in owed}

    def parse(payload: Any) -> list[Result]:
        results = _cached_results(payload)
        keys = {obligation_of(r) for r in results}
        if any(key.subject not in subjects or key.setting != geometry for key in keys):
            raise ValueError("results of another suite")
        if not any(r.verdict is Verdict.NONCONFORMANT for r in results) and not set(owed) <= keys:
            raise ValueError("not every row this suite owes")
        return results

    return parse


def _layout_payload(variant: str) -> Callable[[Any], list[Result]]:
    owed = set(layout_obligations(variant))

    def parse(payload: Any) -> list[Result]:
        results = _cached_results(payload)
        keys = [obligation_of(r) for r in results]
        if any(r.variant != variant or not isinstance(key.setting, LayoutSetting) or r.geometry != key.setting.label
               for r, key in zip(results, keys)):
            raise ValueError("results of another suite")
        if not owed <= set(keys):
            raise ValueError("not every row this layout suite owes")
        return results

    return parse
