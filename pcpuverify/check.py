"""The pre-merge check: run the configured matrix, compare every result with the baseline, and say yes or no.

``pcpu-verify check`` (DESIGN.md, "Pre-merge check"; issue 5) runs, in this
order of cost: the regression traces (tests/traces/ and the baseline's own
known-violation traces, replayed on ``model/``), the proof suite
(``proofs.suite.run_suite``, conformance first) for every variant x geometry
of the matrix, the first-chunk layout proofs (``proofs.layout.run_layout_suite``
at PAGE_SIZE 4096, 64-bit values; config key ``layout``) for every variant,
and the stateful machines (``counterexamples.stateful``) for a bounded number
of examples.  Every row is then held to ``baseline.json``.

The unit of scheduling is one suite, a (variant, geometry) pair: its
obligations share the Houdini strengthening, so splitting them would redo
that work; and one layout suite per variant (its conformance walk is shared
by every property).  They run in a ``ProcessPoolExecutor``; each suite
worker streams its rows to a file as they finish, so a suite cut off by the
budget still reports what it reached, and the rest as NOT RUN -- never as
passed (a layout suite reports nothing until it is done).

Results are cached on disk by a hash of everything they depend on (see
``suite_key`` and ``layout_key``); a cache entry is only used when it parses,
carries its own key, holds no UNKNOWN and every row its item owes, else it
is ignored and recomputed.

Nothing here prints: the CLI (check_cli.py) and reports.py turn a
``CheckRun`` into text.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import importlib.util
import inspect
import json
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import z3

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the same parser, from PyPI
    import tomli as tomllib

from pcpuverify.counterexamples.witness import load_witnesses
from pcpuverify.invariants.check import (
    INVARIANTS,
    STATE_INVARIANTS,
    STEP_INVARIANTS,
    UnknownInvariant,
    first_violation,
    invariant,
)
from pcpuverify.model import variants as model_variants
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.reference import OpError
from pcpuverify.model.trace import TraceError, load_trace, read_input, trace_from_json, write_atomically
from pcpuverify.symbolic.bv import check_encodable
from pcpuverify.proofs.initiation import OP as FIRST_CHUNK_OP
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES, PRECONDITION_SETS
from pcpuverify.proofs.obligations import OPS
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.solver import MAX_RLIMIT, MAX_SEED, MAX_TIMEOUT, MIN_TIMEOUT, SolverOptions
from pcpuverify.proofs.suite import MAX_DEPTH, SuiteOptions
from pcpuverify.symbolic.subjects import SUBJECTS, SubjectError, inherited_layout, register, subject

# Exit codes of ``pcpu-verify check`` (the same numbering as ``prove``).
EXIT_OK = 0  # every row equals the baseline, nothing UNKNOWN, nothing left unrun
EXIT_REGRESSION = 1  # a new violation, a known violation that disappeared, or another change of verdict
EXIT_USAGE = 2  # bad usage or input: config, baseline, trace, variant, geometry
EXIT_UNDECIDED = 3  # some obligation UNKNOWN (solver limit or timeout) or NOT RUN (budget): never a pass
EXIT_TOOL_FAILURE = 4  # VACUOUS, SPURIOUS or NONCONFORMANT: the encoding or the tool is wrong
EXIT_INTERRUPTED = 130  # Ctrl-C: no report written, no half-written cache entry
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM (a CI job cancelled), handled as Ctrl-C is


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt, so that it unwinds the same way."""

CACHE_FORMAT = "pcpu-verify-check-cache/1"
BASELINE_FORMAT = "pcpu-verify-baseline/1"
CONFIG_TABLE = "tool.pcpu-verify"

# The first-chunk layout proofs (proofs/layout.py): one page size, every precondition set.
LAYOUT_OP = "layout"  # the op of every layout row
LAYOUT_PAGE_SIZE = 4096
LAYOUT_SETS = tuple(PRECONDITION_SETS)  # "setup", "callers", "arch": the geometry of a row is "page4096/<set>"

# The ported function each kind of obligation exercises first (SARIF points there).
OP_FUNCTIONS = {
    "init": "pcpu_alloc_chunk",
    FIRST_CHUNK_OP: "pcpu_alloc_first_chunk",
    "alloc": "pcpu_alloc_area",
    "free": "pcpu_free_area",
    "populate": "pcpu_chunk_populated",
    "depopulate": "pcpu_chunk_depopulated",
    LAYOUT_OP: "pcpu_setup_first_chunk",  # model/first_chunk.py: a function of the module, not a method
}

TOOL_FAILURES = (Verdict.VACUOUS, Verdict.SPURIOUS, Verdict.NONCONFORMANT)


class CheckError(ValueError):
    """Bad usage or input (config, baseline, plugin, option): one line, exit code 2."""


USER_ERRORS = (CheckError, TraceError, OpError, LayoutError, GeometryError, UnknownInvariant,
               model_variants.UnknownVariant)


# -- outcomes -------------------------------------------------------------------------


class Outcome(enum.Enum):
    OK = "ok"  # equals the baseline
    NEW_VIOLATION = "new violation"  # VIOLATED (or broken) where the baseline expects it to hold
    VIOLATION_GONE = "violation gone"  # the baseline expects a violation the run no longer finds
    CHANGED = "changed"  # another verdict than the baseline's, or a row the baseline does not list
    UNKNOWN = "unknown"  # the solver gave no answer within its limits: never a pass
    NOT_RUN = "not run"  # the budget ran out before this row was reached: never a pass
    TOOL_FAILURE = "tool failure"  # VACUOUS, SPURIOUS, NONCONFORMANT: nothing about the allocator is known

    @property
    def regression(self) -> bool:
        return self in (Outcome.NEW_VIOLATION, Outcome.VIOLATION_GONE, Outcome.CHANGED)


NOT_RUN = "NOT RUN"  # the verdict column of a row the budget did not reach


@dataclass(frozen=True)
class Row:
    """One checked row: a proof obligation, a replayed regression trace, or a stateful finding.

    ``kind`` is "proof", "trace" or "stateful"; ``verdict`` the run's answer
    (a ``Verdict`` value, REPRODUCED/NOT-REPRODUCED for a trace, BROKEN/HELD
    for the stateful machines, or NOT RUN); ``expected`` the baseline's.
    """

    kind: str
    variant: str
    geometry: str
    invariant: str
    op: str
    verdict: str
    expected: str | None
    outcome: Outcome
    seconds: float = 0.0
    cached: bool = False
    detail: str = ""
    trace: dict[str, Any] | None = None  # the counterexample of a VIOLATED/BROKEN row
    minimised: dict[str, Any] | None = None  # the minimised counterexample of a new violation
    source: str | None = None  # the trace file a "trace" row replays
    # a layout row's findings (proofs/layout.py's Result.extra): preconditions, breaks_when, counterexample
    layout: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"{self.invariant} / {self.op}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind, "variant": self.variant, "geometry": self.geometry, "invariant": self.invariant,
            "op": self.op, "result": self.verdict, "expected": self.expected, "outcome": self.outcome.value,
            "seconds": round(self.seconds, 3), "cached": self.cached,
        }
        for key in ("detail", "trace", "minimised", "source", "layout"):
            value = getattr(self, key)
            if value not in (None, ""):
                data[key] = value
        return data


# -- configuration ------------------------------------------------------------------------


CONFIG_KEYS: dict[str, str] = {
    "variants": "a list of variant names",
    "geometries": "a list of geometries PAGESxBITS, e.g. [\"1x8\"]",
    "depth": f"the bounded model checking depth, an integer from 1 to {MAX_DEPTH}",
    "rlimit": f"Z3's resource limit per query, an integer from 1 to {MAX_RLIMIT}",
    "seed": f"the Z3 and conformance seed, an integer from 0 to {MAX_SEED}",
    "timeout": f"wall-clock seconds per solver query (a safety net), from {MIN_TIMEOUT} to {MAX_TIMEOUT}",
    "budget": "wall-clock seconds for the whole check, 0 for none",
    "jobs": "worker processes, 0 for one per core",
    "cache-dir": "the cache directory, relative to the config file",
    "baseline": "the baseline file, relative to the config file",
    "traces": "a list of directories of regression traces, relative to the config file",
    "stateful-examples": "Hypothesis examples per geometry for the stateful machines, 0 to skip them",
    "layout": "true or false: run the first-chunk layout proofs (PAGE_SIZE 4096) for every variant",
}


@dataclass(frozen=True)
class Config:
    """What to check and how; every key of ``[tool.pcpu-verify]`` is required (CONFIG_KEYS)."""

    root: Path  # the directory of the config file: relative paths start here
    variants: tuple[str, ...]
    geometries: tuple[str, ...]
    depth: int
    rlimit: int
    seed: int
    timeout: float
    budget: float
    jobs: int
    cache_dir: Path | None  # None: no cache
    baseline: Path
    traces: tuple[Path, ...]
    stateful_examples: int
    layout: bool  # the first-chunk layout proofs, once per variant
    invariants: frozenset[str] | None = None  # only these invariants (a filter of the matrix)
    ops: frozenset[str] | None = None
    plugins: tuple[Path, ...] = ()

    @property
    def suite_options(self) -> SuiteOptions:
        return SuiteOptions(solver=SolverOptions(rlimit=self.rlimit, seed=self.seed, timeout=self.timeout),
                            depth=self.depth)

    @property
    def suite_filters(self) -> tuple[frozenset[str] | None, frozenset[str] | None] | None:
        """The --invariant/--op filters as ``run_suite`` sees them; None when they leave the suites nothing.

        A layout property is not a suite invariant, nor "layout" a suite
        operation: those select the layout rows only.
        """
        invariants = ops = None
        if self.invariants is not None:
            invariants = frozenset(self.invariants - set(LAYOUT_PROPERTIES))
            if not invariants:
                return None
        if self.ops is not None:
            ops = frozenset(self.ops - {LAYOUT_OP})
            if not ops:
                return None
        return invariants, ops

    @property
    def layout_properties(self) -> frozenset[str] | None:
        """The layout properties to report (None: every one), or an empty set when layout is off or filtered out."""
        if not self.layout or (self.ops is not None and LAYOUT_OP not in self.ops):
            return frozenset()
        if self.invariants is None:
            return None
        return frozenset(self.invariants & set(LAYOUT_PROPERTIES))

    @property
    def workers(self) -> int:
        return self.jobs or os.cpu_count() or 1

    def geometry_objects(self) -> list[Geometry]:
        out = []
        for i, spec in enumerate(self.geometries):
            try:
                out.append(Geometry.parse(spec))
                check_encodable(out[-1])
            except GeometryError as e:
                raise CheckError(f"geometry {spec!r} (geometries[{i}]): {e}") from None
        return out


def find_config(start: Path) -> Path:
    """The nearest pyproject.toml at or above ``start`` that has a ``[tool.pcpu-verify]`` table."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
                continue
            if "pcpu-verify" in data.get("tool", {}):
                return candidate
    raise CheckError(f"no pyproject.toml with a [{CONFIG_TABLE}] table at or above {start};"
                     " run from the repository or pass --config FILE")


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``[tool.pcpu-verify]`` from ``path`` (default: the nearest pyproject.toml), then apply ``overrides``.

    ``overrides`` has the same keys as the table (as given on the command
    line); a value of None leaves the file's.
    """
    path = find_config(Path.cwd()) if path is None else path
    text = read_input(path, CheckError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CheckError(f"{path}: not TOML: {e}") from None
    table = data.get("tool", {}).get("pcpu-verify") if isinstance(data.get("tool"), dict) else None
    if not isinstance(table, dict):
        raise CheckError(f"{path}: no [{CONFIG_TABLE}] table; it needs the keys {', '.join(CONFIG_KEYS)}")
    if "stateful-module" in table:
        raise CheckError(f"{path}: [{CONFIG_TABLE}]: 'stateful-module' is no longer a key (the stateful machines"
                         " are pcpuverify.counterexamples.stateful); remove it")
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        raise CheckError(f"{path}: [{CONFIG_TABLE}]: unknown key {unknown[0]!r}; the keys are {', '.join(CONFIG_KEYS)}")
    missing = [k for k in CONFIG_KEYS if k not in table]
    if missing:
        raise CheckError(f"{path}: [{CONFIG_TABLE}]: missing key {missing[0]!r} ({CONFIG_KEYS[missing[0]]})")
    values = dict(table)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    return _validated(path, values)


def _validated(path: Path, v: dict[str, Any]) -> Config:
    where = f"{path}: [{CONFIG_TABLE}]"

    def bad(key: str) -> CheckError:
        return CheckError(f"{where}: {key!r} must be {CONFIG_KEYS[key]} (got {v[key]!r})")

    def integer(key: str, least: int, most: int | None = None) -> int:
        value = v[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < least or (most is not None and value > most):
            raise bad(key)
        return value

    def number(key: str, least: float, most: float | None = None) -> float:
        value = v[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not least <= value <= (math.inf if most is None else most):
            raise bad(key)
        return float(value)

    def strings(key: str) -> tuple[str, ...]:
        value = v[key]
        if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
            raise bad(key)
        return tuple(value)

    def a_path(key: str) -> Path:
        value = v[key]
        if not isinstance(value, (str, Path)) or not str(value):
            raise bad(key)
        return (path.parent / value).resolve()

    variants = strings("variants")
    if not variants:
        raise bad("variants")
    geometries = strings("geometries")
    if not geometries:
        raise bad("geometries")
    cache = v["cache-dir"]
    if not isinstance(v["layout"], bool):
        raise bad("layout")
    return Config(
        root=path.parent.resolve(),
        variants=variants,
        geometries=geometries,
        depth=integer("depth", 1, MAX_DEPTH),
        rlimit=integer("rlimit", 1, MAX_RLIMIT),
        seed=integer("seed", 0, MAX_SEED),
        timeout=number("timeout", MIN_TIMEOUT, MAX_TIMEOUT),
        budget=number("budget", 0),
        jobs=integer("jobs", 0),
        cache_dir=None if cache is False else a_path("cache-dir"),
        baseline=a_path("baseline"),
        traces=tuple((path.parent / t).resolve() for t in strings("traces")),
        stateful_examples=integer("stateful-examples", 0),
        layout=v["layout"],
        invariants=frozenset(v["invariants"]) if v.get("invariants") else None,
        ops=frozenset(v["ops"]) if v.get("ops") else None,
        plugins=tuple(Path(p).resolve() for p in v.get("plugins") or ()),
    )


# -- variants from a plugin file -------------------------------------------------------------


def register_variant(name: str, model: type, encoding: type, layout: type | None = None) -> None:
    """Add a variant for this process: what a ``--variant-module FILE`` calls at import time.

    For a patch under review and for tests.  ``layout`` (the symbolic
    ``pcpu_setup_first_chunk`` lines, ``symbolic/setup.py``) defaults to the
    parent's.  A patch that lands registers its subject in
    ``pcpuverify/symbolic/subjects.py`` instead.
    """
    try:
        register(name, model, encoding, layout or inherited_layout(model))
    except SubjectError as e:
        raise CheckError(str(e)) from None


def load_plugin(path: Path) -> None:
    """Import a ``--variant-module`` file; it registers its variants with ``register_variant``."""
    if not path.is_file():
        raise CheckError(f"--variant-module {path}: no such file")
    name = "pcpu_verify_plugin_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CheckError(f"--variant-module {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except CheckError:
        raise
    except Exception as e:  # the plugin's own bug: one line, not a traceback
        del sys.modules[name]
        raise CheckError(f"--variant-module {path}: importing it failed: {type(e).__name__}: {e}") from None


# -- the rows a suite owes -------------------------------------------------------------------------


def suite_rows(invariants: frozenset[str] | None, ops: frozenset[str] | None) -> list[tuple[str, str]]:
    """Every (invariant, op) row ``run_suite`` reports for these filters, in its order."""
    def wanted(name: str) -> bool:
        return invariants is None or name in invariants

    kinds = [k for k in OPS if ops is None or k in ops]
    symbolic = [i.name for i in STATE_INVARIANTS if i.z3 is not None and wanted(i.name)]
    rows = [(name, "init") for name in symbolic]
    rows += [(i.name, FIRST_CHUNK_OP) for i in STATE_INVARIANTS if wanted(i.name)]
    rows += [(name, k) for name in symbolic for k in kinds]
    rows += [(i.name, k) for i in STEP_INVARIANTS if wanted(i.name) for k in kinds]
    return rows


def layout_geometry(set_name: str) -> str:
    return f"page{LAYOUT_PAGE_SIZE}/{set_name}"


def layout_rows(properties: frozenset[str] | None = None) -> list[tuple[str, str]]:
    """Every (geometry, property) row ``run_layout_suite`` reports (``properties``: only those), in its order.

    Derived from ``LAYOUT_PROPERTIES`` and each property's ``sets``: a
    property added to proofs/layout.py is owed without a change here.
    """
    return [(layout_geometry(set_name), name) for set_name in LAYOUT_SETS
            for name, prop in LAYOUT_PROPERTIES.items()
            if set_name in prop.sets and (properties is None or name in properties)]


# -- cache keys ------------------------------------------------------------------------------------------


PACKAGE_DIR = Path(__file__).resolve().parent

# Modules that only print, draw or parse the command line: no module the key hashes imports them
# (tests/test_faults.py holds that), so a result cannot depend on them and editing them keeps the cache.
# Every other module counts, including ones added later: forgetting a folder can no longer serve a stale verdict.
PRESENTATION_MODULES = frozenset({"cli.py", "check_cli.py", "report.py", "reports.py", "draw.py"})


def source_files() -> list[Path]:
    """Every .py file of the package a result may depend on (all but ``PRESENTATION_MODULES``)."""
    return sorted(p for p in PACKAGE_DIR.rglob("*.py")
                  if p.relative_to(PACKAGE_DIR).as_posix() not in PRESENTATION_MODULES)


def _without_other_variants(path: Path, text: str, keep: set[type]) -> str:
    """``text`` of ``path`` less the source of every registered variant class not in ``keep``.

    So that editing the ``fixed`` variant re-checks ``fixed`` only; anything
    else in the file (helpers, the registry) still counts for every variant.
    """
    lines = text.splitlines(keepends=True)
    cut: list[tuple[int, int]] = []
    for cls in {c for s in SUBJECTS.values() for c in (s.model, s.encoding, s.layout) if c is not None} - keep:
        try:
            if Path(inspect.getsourcefile(cls) or "").resolve() != path.resolve():
                continue
            source, start = inspect.getsourcelines(cls)
        except (OSError, TypeError):
            continue
        cut.append((start - 1, start - 1 + len(source)))
    for a, b in sorted(cut, reverse=True):
        del lines[a:b]
    return "".join(lines)


def source_digest(variant: str, plugins: tuple[Path, ...] = ()) -> str:
    """A hash of the sources the results for ``variant`` depend on: ``source_files()`` and the plugins."""
    keep: set[type] = set()
    if variant in SUBJECTS:
        parts = SUBJECTS[variant]
        for cls in (parts.model, parts.encoding, parts.layout):
            keep |= set(cls.__mro__) if cls is not None else set()
    h = hashlib.sha256()
    for file in source_files():
        text = file.read_text(encoding="utf-8")
        h.update(f"{file.relative_to(PACKAGE_DIR).as_posix()}\0".encode())
        h.update(_without_other_variants(file, text, keep).encode())
    for plugin in sorted(plugins):
        h.update(f"plugin\0{plugin.name}\0".encode())
        h.update(plugin.read_bytes())
    return h.hexdigest()


def _digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def suite_key(config: Config, variant: str, geometry: Geometry) -> str:
    """Everything a suite's results depend on: sources, geometry, variant, Z3's version, the options, the filters."""
    invariants, ops = config.suite_filters or (None, None)
    return _digest({
        "format": CACHE_FORMAT,
        "kind": "suite",
        "sources": source_digest(variant, config.plugins),
        "variant": variant,
        "geometry": geometry.to_json(),
        "z3": z3.get_version_string(),
        "options": config.suite_options.to_json(),
        "invariants": sorted(invariants) if invariants is not None else None,
        "ops": sorted(ops) if ops is not None else None,
        "witnesses": traces_digest(config),
    })


def traces_digest(config: Config) -> str:
    """A hash of every regression trace file: the suites carry them to rows left NOT-INDUCTIVE."""
    h = hashlib.sha256()
    for folder in config.traces:
        for path in sorted(folder.rglob("*.json")) if folder.is_dir() else ():
            h.update(f"{path.relative_to(folder).as_posix()}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def layout_key(config: Config, variant: str) -> str:
    """Everything a layout suite's results depend on: sources, variant, page size, sets, Z3, the solver options.

    No filter: the layout suite always proves every property, the filters
    only choose which rows are reported, so every filter shares one entry.
    """
    return _digest({
        "format": CACHE_FORMAT,
        "kind": "layout",
        "sources": source_digest(variant, config.plugins),
        "variant": variant,
        "page_size": LAYOUT_PAGE_SIZE,
        "sets": list(LAYOUT_SETS),
        "z3": z3.get_version_string(),
        "options": config.suite_options.solver.to_json(),
    })


def stateful_key(config: Config, variant: str) -> str:
    import hypothesis

    return _digest({
        "format": CACHE_FORMAT,
        "kind": "stateful",
        "sources": source_digest(variant, config.plugins),
        "variant": variant,
        "examples": config.stateful_examples,
        "hypothesis": hypothesis.__version__,
    })


def minimise_key(suite: str, invariant_name: str, op: str) -> str:
    return _digest({"format": CACHE_FORMAT, "kind": "minimise", "suite": suite, "invariant": invariant_name, "op": op})


# -- the cache ---------------------------------------------------------------------------------------------


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


def _suite_payload(variant: str, geometry: str, expected: list[tuple[str, str]]) -> Callable[[Any], list[Result]]:
    def parse(payload: Any) -> list[Result]:
        results = _cached_results(payload)
        if any((r.variant, r.geometry) != (variant, geometry) for r in results):
            raise ValueError("results of another suite")
        rows = {(r.invariant, r.op) for r in results}
        if not any(r.verdict is Verdict.NONCONFORMANT for r in results) and not set(expected) <= rows:
            raise ValueError("not every row this suite owes")
        return results

    return parse


def _layout_payload(variant: str) -> Callable[[Any], list[Result]]:
    owed = set(layout_rows())
    geometries = {g for g, _ in owed}

    def parse(payload: Any) -> list[Result]:
        results = _cached_results(payload)
        if any(r.variant != variant or r.geometry not in geometries or r.op != LAYOUT_OP for r in results):
            raise ValueError("results of another suite")
        if not owed <= {(r.geometry, r.invariant) for r in results}:
            raise ValueError("not every row this layout suite owes")
        return results

    return parse


# -- the baseline ------------------------------------------------------------------------------------------


@dataclass
class Baseline:
    """Per variant and geometry, the expected verdict of every row, with the trace of each known violation.

    ``suites[variant][geometry][invariant][op]`` is a verdict string, or for
    a VIOLATED row ``{"verdict": "VIOLATED", "trace": {...}}`` -- for a
    layout row (geometry "page4096/<set>", op "layout"), which has no
    operations to replay, ``{"verdict": "VIOLATED", "counterexample": "..."}``
    with the inputs that break it, in words;
    ``stateful`` holds, per variant, the invariants the machines break within
    ``stateful_examples`` examples (with their traces).
    """

    suites: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    stateful_examples: int | None = None
    stateful: dict[str, dict[str, Any]] = field(default_factory=dict)

    def expected(self, variant: str, geometry: str, inv: str, op: str) -> str | None:
        entry = self.suites.get(variant, {}).get(geometry, {}).get(inv, {}).get(op)
        return entry["verdict"] if isinstance(entry, dict) else entry

    def known_violations(self) -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
        for variant, geos in self.suites.items():
            for geometry, invs in geos.items():
                for inv, ops in invs.items():
                    for op, entry in ops.items():
                        if isinstance(entry, dict) and entry.get("trace") is not None:
                            yield variant, geometry, inv, op, entry["trace"]
        for variant, broken in self.stateful.items():
            for inv, trace in broken.items():
                yield variant, "stateful", inv, "stateful", trace

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "comment": "Expected verdicts of `pcpu-verify check`; regenerate with `pcpu-verify check --update-baseline`"
                       " and review the diff: a row that changes is a finding, never noise.",
            "suites": self.suites,
            "stateful": {"examples": self.stateful_examples, "broken": self.stateful},
        }


def load_baseline(path: Path, required: bool = True) -> Baseline:
    """Read and validate the baseline; every problem is one CheckError naming the file and the place."""
    if not path.exists():
        if required:
            raise CheckError(f"{path}: no baseline; create it with `pcpu-verify check --update-baseline`")
        return Baseline()
    text = read_input(path, CheckError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckError(f"{path}: not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise CheckError(f"{path}: JSON nested too deeply to be a baseline") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise CheckError(f"{path}: 'format' must be {BASELINE_FORMAT!r}")
    suites = data.get("suites")
    if not isinstance(suites, dict):
        raise CheckError(f"{path}: 'suites' must be an object: variant -> geometry -> invariant -> op -> verdict")
    verdicts = {v.value for v in Verdict if v.passed}
    for variant, geos in suites.items():
        if not isinstance(geos, dict):
            raise CheckError(f"{path}: suites.{variant} must be an object of geometries")
        for geometry, invs in geos.items():
            if not isinstance(invs, dict):
                raise CheckError(f"{path}: suites.{variant}.{geometry} must be an object of invariants")
            for inv, ops in invs.items():
                if not isinstance(ops, dict):
                    raise CheckError(f"{path}: suites.{variant}.{geometry}.{inv} must be an object of ops")
                for op, entry in ops.items():
                    where = f"{path}: suites.{variant}.{geometry}.{inv}.{op}"
                    verdict = entry.get("verdict") if isinstance(entry, dict) else entry
                    if verdict not in verdicts:
                        raise CheckError(f"{where}: the verdict must be one of {', '.join(sorted(verdicts))}"
                                         f" (got {verdict!r})")
                    if verdict == Verdict.VIOLATED.value and op == LAYOUT_OP:
                        # 64-bit inputs, not a sequence of operations: nothing to replay
                        if isinstance(entry, dict) and not isinstance(entry.get("counterexample", ""), str):
                            raise CheckError(f"{where}: a layout row's counterexample must be a string")
                    elif verdict == Verdict.VIOLATED.value:
                        if not isinstance(entry, dict) or not isinstance(entry.get("trace"), dict):
                            raise CheckError(f"{where}: a VIOLATED row needs its trace")
                        try:
                            trace_from_json(entry["trace"])
                        except TraceError as e:
                            raise CheckError(f"{where}: trace: {e}") from None
    stateful = data.get("stateful", {"examples": None, "broken": {}})
    if not isinstance(stateful, dict) or not isinstance(stateful.get("broken", {}), dict):
        raise CheckError(f"{path}: 'stateful' must be an object with 'examples' and 'broken'")
    examples = stateful.get("examples")
    if examples is not None and (isinstance(examples, bool) or not isinstance(examples, int)):
        raise CheckError(f"{path}: stateful.examples must be an integer")
    broken = stateful.get("broken", {})
    for variant, invs in broken.items():
        if not isinstance(invs, dict):
            raise CheckError(f"{path}: stateful.broken.{variant} must be an object: invariant -> trace")
        for inv, trace in invs.items():
            try:
                trace_from_json(trace)
            except TraceError as e:
                raise CheckError(f"{path}: stateful.broken.{variant}.{inv}: {e}") from None
    return Baseline(suites, examples, broken)


def _outcome(verdict: str, expected: str | None, violated: str, held: str | None = None) -> Outcome:
    """How ``verdict`` compares with ``expected``: ``violated`` is the verdict that means "broken"."""
    if verdict == NOT_RUN:
        return Outcome.NOT_RUN
    if verdict == Verdict.UNKNOWN.value:
        return Outcome.UNKNOWN
    if verdict in {v.value for v in TOOL_FAILURES}:
        return Outcome.TOOL_FAILURE
    if verdict == expected:
        return Outcome.OK
    if verdict == violated:
        return Outcome.NEW_VIOLATION
    if expected == violated:
        return Outcome.VIOLATION_GONE
    return Outcome.CHANGED


# -- work items and what runs in a worker ------------------------------------------------------------


@dataclass(frozen=True)
class SuiteItem:
    variant: str
    geometry: Geometry
    options: SuiteOptions
    invariants: frozenset[str] | None
    ops: frozenset[str] | None
    key: str
    estimate: float
    witnesses: tuple[Path, ...] = ()  # the regression trace directories, carried to rows left NOT-INDUCTIVE

    @property
    def label(self) -> str:
        return f"{self.variant} {self.geometry.name}"


@dataclass(frozen=True)
class LayoutItem:
    """The first-chunk layout proofs of one variant: every property under every precondition set."""

    variant: str
    solver: SolverOptions
    properties: frozenset[str] | None  # the rows to report (the suite proves them all: one cache entry)
    key: str
    estimate: float = 30.0

    @property
    def label(self) -> str:
        return f"{self.variant} layout"


@dataclass(frozen=True)
class StatefulItem:
    variant: str
    examples: int
    key: str
    estimate: float

    @property
    def label(self) -> str:
        return f"{self.variant} stateful"


@dataclass(frozen=True)
class MinimiseItem:
    variant: str
    geometry: Geometry
    invariant: str
    op: str
    depth: int
    solver: SolverOptions
    key: str
    estimate: float = 5.0

    @property
    def label(self) -> str:
        return f"minimise {self.variant} {self.geometry.name} {self.invariant}"


Item = SuiteItem | LayoutItem | StatefulItem | MinimiseItem


def _owns(item: Item, row: Row) -> bool:
    """``row`` is one of the rows ``item`` produced."""
    if isinstance(item, SuiteItem):
        return (row.kind, row.variant, row.geometry) == ("proof", item.variant, item.geometry.name)
    if isinstance(item, LayoutItem):
        return (row.kind, row.variant, row.op) == ("proof", item.variant, LAYOUT_OP)
    if isinstance(item, StatefulItem):
        return (row.kind, row.variant) == ("stateful", item.variant)
    return False


def _worker_init(plugins: tuple[Path, ...], parent: int) -> None:
    # The parent owns Ctrl-C: it stops the workers and writes nothing half-done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent that dies without stopping us (SIGKILL, a crash) cannot: leave with it, and with the last
    # worker gone the resource tracker sees its pipe close and leaves too.  Polled rather than
    # PR_SET_PDEATHSIG, which fires when the parent's *thread* that spawned us ends, and is Linux only.
    threading.Thread(target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True).start()
    for plugin in plugins:
        load_plugin(plugin)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:  # reparented (to init or a subreaper) once the parent is gone
        time.sleep(0.5)
    os._exit(EXIT_TERMINATED)  # no cleanup to do: the parent writes every file, and it is gone


def run_item(item: Item, rows_file: str | None = None) -> Any:
    """Run one work item (in a worker process); a suite appends each row to ``rows_file`` as it finishes."""
    if isinstance(item, SuiteItem):
        return _run_suite_item(item, rows_file)
    if isinstance(item, LayoutItem):
        return run_layout(item.variant, item.solver)
    if isinstance(item, StatefulItem):
        return run_stateful(item.variant, item.examples)
    return run_minimise(item)


def _run_suite_item(item: SuiteItem, rows_file: str | None) -> list[Result]:
    from pcpuverify.proofs.suite import run_suite

    def run(progress: Callable[[Result], None] | None) -> list[Result]:
        return run_suite(item.variant, item.geometry, item.options,
                         set(item.invariants) if item.invariants is not None else None,
                         set(item.ops) if item.ops is not None else None, progress,
                         load_witnesses(item.witnesses))

    if rows_file is None:
        return run(None)
    with open(rows_file, "a", encoding="utf-8") as out:
        def streamed(r: Result) -> None:
            out.write(json.dumps(result_to_json(r)) + "\n")
            out.flush()

        return run(streamed)


def run_layout(variant: str, solver: SolverOptions) -> list[Result]:
    """``run_layout_suite`` at PAGE_SIZE 4096 on every precondition set, each row's geometry "page4096/<set>".

    (A NONCONFORMANT row -- conformance failed before any proof -- names the
    page size only; it gets its set here, like every other row.)
    """
    from pcpuverify.proofs.layout import run_layout_suite

    results = run_layout_suite(LAYOUT_PAGE_SIZE, solver, variant=variant, sets=LAYOUT_SETS)
    out = []
    for r in results:
        set_name = r.extra.get("preconditions")
        if isinstance(set_name, str) and r.geometry != layout_geometry(set_name):
            r = replace(r, geometry=layout_geometry(set_name))
        out.append(r)
    return out


def run_stateful(variant: str, examples: int) -> dict[str, Any]:
    """The stateful machines on every geometry they list: the invariants broken, with traces."""
    from pcpuverify.counterexamples.stateful import run_machines

    findings = run_machines(variant, examples)
    return {
        "seconds": findings.seconds,
        "steps": findings.steps,
        "broken": {name: trace.to_json() for name, trace in sorted(findings.shortest.items())},
    }


def run_minimise(item: MinimiseItem) -> dict[str, Any] | None:
    """The shortest counterexample (fewest ops, smallest arguments and geometry) for a new violation."""
    from pcpuverify.proofs.shortest import shortest_counterexample

    try:
        found = shortest_counterexample(item.variant, item.geometry, item.invariant, item.depth, item.solver)
    except AssertionError:  # the solver's trace did not replay: keep the suite's own
        return None
    return None if found is None else found.trace.to_json()


# -- the run ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """One event for the terminal: an item started, streamed a row, or finished."""

    label: str
    event: str  # "start", "row", "done", "cached", "not run", "waiting", "warning"
    message: str = ""
    done: int = 0
    total: int = 0


@dataclass
class CheckRun:
    """Everything a check found: its rows, and how it got them."""

    config: Config
    rows: list[Row]
    seconds: float
    cache: CacheStats
    budget_exhausted: bool = False
    update_baseline: bool = False
    baseline_written: Path | None = None
    items: dict[str, str] = field(default_factory=dict)  # item label -> "ran", "cached", "not run", "partial"

    @property
    def exit_code(self) -> int:
        outcomes = {r.outcome for r in self.rows}
        if Outcome.TOOL_FAILURE in outcomes:
            return EXIT_TOOL_FAILURE
        # rewriting the baseline accepts every change of verdict, but not a regression trace that broke
        if any(r.outcome.regression and (r.kind == "trace" or not self.update_baseline) for r in self.rows):
            return EXIT_REGRESSION
        if Outcome.UNKNOWN in outcomes or Outcome.NOT_RUN in outcomes:
            return EXIT_UNDECIDED
        return EXIT_OK

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.rows:
            out[r.outcome.value] += 1
        return out

    def summary_json(self) -> dict[str, Any]:
        return {
            "exit": self.exit_code,
            "seconds": round(self.seconds, 3),
            "rows": len(self.rows),
            "outcomes": self.counts(),
            "cache": {"hits": self.cache.hits, "misses": self.cache.misses, "ignored": self.cache.ignored,
                      "written": self.cache.written},
            "budget": self.config.budget or None,
            "budget_exhausted": self.budget_exhausted,
            "items": self.items,
            "matrix": {"variants": list(self.config.variants), "geometries": list(self.config.geometries),
                       "options": self.config.suite_options.to_json(),
                       "stateful_examples": self.config.stateful_examples, "layout": self.config.layout},
            "baseline": str(self.config.baseline),
            "baseline_written": str(self.baseline_written) if self.baseline_written else None,
        }


ProgressFn = Callable[[Progress], None]


def validate(config: Config) -> list[Geometry]:
    """Check every input before running anything: plugins, variants, geometries, filters."""
    for plugin in config.plugins:
        load_plugin(plugin)
    for name in config.variants:
        try:
            subject(name).require_encoding()
        except SubjectError as e:
            raise CheckError(str(e)) from None
    for name in config.invariants or ():
        if name in LAYOUT_PROPERTIES:
            if not config.layout:
                raise CheckError(f"invariant {name!r} is a first-chunk layout property: set layout = true"
                                 " (or pass --layout) to check it")
            continue
        invariant(name)
    for op in config.ops or ():
        if op == LAYOUT_OP:
            if not config.layout:
                raise CheckError(f"--op {LAYOUT_OP} selects the first-chunk layout rows: set layout = true"
                                 " (or pass --layout) to check them")
            continue
        if op not in OPS:
            raise CheckError(f"unknown operation {op!r}; choose one of: {', '.join([*OPS, LAYOUT_OP])}")
    if (config.invariants is not None or config.ops is not None) and config.suite_filters is None \
            and config.layout_properties == frozenset():
        raise CheckError("the --invariant/--op filters select no obligation: a layout property or --op layout"
                         " selects layout rows only, any other name suite rows only")
    return config.geometry_objects()


def regression_traces(config: Config) -> list[tuple[Path, Any]]:
    """Every trace file under the configured directories, loaded (a malformed one is a TraceError)."""
    out = []
    for folder in config.traces:
        if not folder.is_dir():
            raise CheckError(f"traces: {folder}: no such directory")
        for path in sorted(folder.rglob("*.json")):
            out.append((path, load_trace(path)))
    return out


def _replay_row(variant: str, geometry: str, trace: Any, source: str) -> Row:
    """A trace must still break the invariant it claims (or, without a claim, replay without error)."""
    start = time.perf_counter()
    name = trace.violates or "replays"
    try:
        at = first_violation(trace, trace.violates) if trace.violates else None
        verdict = "REPRODUCED" if (at is not None or not trace.violates) else "NOT-REPRODUCED"
        detail = "" if at is None else ("breaks it in the initial state" if at < 0 else f"breaks it at step {at}")
    except (OpError, LayoutError) as e:
        verdict, detail = "NOT-REPRODUCED", f"replay refused: {e}"
    expected = "REPRODUCED"
    outcome = Outcome.OK if verdict == expected else Outcome.VIOLATION_GONE
    return Row("trace", variant, geometry, name, "replay", verdict, expected, outcome,
               time.perf_counter() - start, detail=detail, trace=trace.to_json(), source=source)


def _estimate(history: dict[str, Any], label: str, default: float) -> tuple[float, int]:
    entry = history.get(label, {})
    seconds = entry.get("seconds") if isinstance(entry, dict) else None
    failures = entry.get("failures", 0) if isinstance(entry, dict) else 0
    return (float(seconds) if isinstance(seconds, (int, float)) else default,
            int(failures) if isinstance(failures, int) else 0)


def _order(items: list[Item], history: dict[str, Any]) -> list[Item]:
    """Cheap first; among similar costs, those that failed most often (so a budget reaches the likely failures)."""
    def key(item: Item) -> float:
        seconds, failures = _estimate(history, item.label, item.estimate)
        return seconds / (1 + failures)

    return sorted(items, key=key)


class _Pool:
    """A process pool that can be stopped mid-task (budget, Ctrl-C): ProcessPoolExecutor cannot, by itself."""

    def __init__(self, workers: int, plugins: tuple[Path, ...]) -> None:
        # spawn, not fork: the parent may run a progress thread, and a plugin must load the same way everywhere
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_worker_init, initargs=(plugins, os.getpid()))

    def submit(self, item: Item, rows_file: str | None) -> Future[Any]:
        return self.executor.submit(run_item, item, rows_file)

    def stop(self) -> None:
        """Cancel what has not started and end the workers still running (their entries are never written)."""
        processes = list(getattr(self.executor, "_processes", {}).values())  # no public API ends running tasks
        self.executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=5)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def _streamed(rows_file: Path) -> list[Result]:
    """The rows a worker finished before it was stopped (a torn last line is dropped)."""
    out = []
    try:
        lines = rows_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            out.append(result_from_json(json.loads(line)))
        except (ValueError, TypeError):
            break
    return out


def run_check(config: Config, progress: ProgressFn | None = None, update_baseline: bool = False) -> CheckRun:
    """Run the whole check for ``config`` and compare it with the baseline (or rewrite the baseline)."""
    started = time.perf_counter()
    deadline = started + config.budget if config.budget else None
    say = progress or (lambda p: None)
    geometries = validate(config)
    baseline = load_baseline(config.baseline, required=not update_baseline)
    traces = regression_traces(config)
    cache = Cache(config.cache_dir, lambda message: say(Progress("cache", "warning", message)))
    history = cache.history()

    rows: list[Row] = []
    items_state: dict[str, str] = {}

    # 1. regression traces and the baseline's known-violation traces: milliseconds each, run here
    for path, trace in traces:
        geometry = "first-chunk" if isinstance(trace.init, FirstChunkInit) else trace.geometry.name
        rows.append(_replay_row(trace.variant, geometry, trace, _relative(path, config.root)))
    if not update_baseline:
        for variant, geometry, inv, op, data in baseline.known_violations():
            if variant not in config.variants:
                continue
            trace = trace_from_json(data)
            rows.append(_replay_row(variant, geometry, trace, f"{config.baseline.name}: {inv} / {op}"))
    say(Progress("regression traces", "done", f"{len(rows)} traces replayed"))

    # 2. the proof suites, the layout proofs and 3. the stateful machines: from the cache, or in the pool
    suites: list[SuiteItem] = []
    filters = config.suite_filters
    for variant in config.variants if filters is not None else ():
        for g in geometries:
            key = suite_key(config, variant, g)
            suites.append(SuiteItem(variant, g, config.suite_options, *filters, key,
                                    estimate=0.6 * g.nr_bits ** 1.5 * config.depth, witnesses=config.traces))
    layouts: list[LayoutItem] = []
    if config.layout_properties != frozenset():
        for variant in config.variants:
            layouts.append(LayoutItem(variant, config.suite_options.solver, config.layout_properties,
                                      layout_key(config, variant)))
    statefuls: list[StatefulItem] = []
    if config.stateful_examples:
        for variant in config.variants:
            statefuls.append(StatefulItem(variant, config.stateful_examples, stateful_key(config, variant),
                                          estimate=0.16 * config.stateful_examples))

    suite_results: dict[str, list[Result]] = {}  # suites and layout suites, by label
    stateful_results: dict[str, dict[str, Any]] = {}
    partial: dict[str, list[Result]] = {}

    def from_cache(item: SuiteItem | LayoutItem | StatefulItem) -> bool:
        """Fill in ``item``'s results from its cache entry; False when there is none to use."""
        if isinstance(item, StatefulItem):
            found = cache.get(item.key, _stateful_payload)
            if found is None:
                return False
            stateful_results[item.label] = found
            message = f"{len(found['broken'])} broken, from the cache"
        else:
            parse = (_suite_payload(item.variant, item.geometry.name, suite_rows(item.invariants, item.ops))
                     if isinstance(item, SuiteItem) else _layout_payload(item.variant))
            results = cache.get(item.key, parse)
            if results is None:
                return False
            suite_results[item.label] = results
            message = f"{len(results)} rows from the cache"
        items_state[item.label] = "cached"
        say(Progress(item.label, "cached", message))
        return True

    budget_exhausted = False
    try:
        todo: list[Item] = []
        busy: list[SuiteItem | LayoutItem | StatefulItem] = []  # another check is computing these
        for item in [*suites, *layouts, *statefuls]:
            if not cache.claim(item.key):
                busy.append(item)
                say(Progress(item.label, "waiting", "another check is computing it: its result will be used"))
            elif from_cache(item):
                cache.release(item.key)
            else:
                todo.append(item)  # its lock is held until its entry is written (or the run ends)
        if todo:
            budget_exhausted = _run_pool(config, _order(todo, history), deadline, cache, say,
                                         suite_results, stateful_results, partial, items_state, history)
        cache.release_all()  # no lock is held while waiting for another's: no two checks wait for each other
        todo = []
        for item in busy:
            if not cache.wait(item.key, deadline):
                budget_exhausted = True
                items_state[item.label] = "not run"
                say(Progress(item.label, "not run", "the budget ran out while another check computed it"))
            else:
                # unlocked again at once, even to compute it: holding one lock while waiting for the next
                # could deadlock two checks (rarely: only results never cached, UNKNOWN, end up here twice)
                cache.release(item.key)
                if not from_cache(item):  # the other check stopped, or its result is UNKNOWN: compute it here
                    todo.append(item)
        if todo:
            budget_exhausted |= _run_pool(config, _order(todo, history), deadline, cache, say,
                                          suite_results, stateful_results, partial, items_state, history)
    finally:
        cache.release_all()

    # compare
    for s in suites:
        results = suite_results.get(s.label)
        cached = items_state.get(s.label) == "cached"
        done = results if results is not None else partial.get(s.label, [])
        rows += _suite_check_rows(s, done, baseline, cached, finished=results is not None)
    for lay in layouts:
        results = suite_results.get(lay.label)
        rows += _layout_check_rows(lay, results or [], baseline, items_state.get(lay.label) == "cached",
                                   finished=results is not None)
    for st in statefuls:
        rows += _stateful_check_rows(st, stateful_results.get(st.label), baseline, config,
                                     cached=items_state.get(st.label) == "cached")

    # 4. minimise the trace of every new violation (cached too), within what is left of the budget
    if not update_baseline:
        rows = _minimise_new_violations(config, rows, suites, deadline, cache, say, items_state)

    for s in [*suites, *layouts, *statefuls]:
        failed = any(r.outcome is not Outcome.OK for r in rows if _owns(s, r))
        entry = history.setdefault(s.label, {})
        if items_state.get(s.label) == "ran" and isinstance(entry, dict) and not update_baseline:
            entry["failures"] = int(entry.get("failures", 0)) + int(failed)
    cache.save_history(history)

    run = CheckRun(config, rows, time.perf_counter() - started, cache.stats, budget_exhausted,
                   update_baseline, items=items_state)
    if update_baseline and run.exit_code == EXIT_OK:
        new = baseline_from(run, baseline)
        write_atomically(config.baseline, json.dumps(new.to_json(), indent=1) + "\n")
        run.baseline_written = config.baseline
    return run


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _stateful_payload(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("broken"), dict):
        raise ValueError("a stateful entry is an object with 'broken'")
    for trace in payload["broken"].values():
        trace_from_json(trace)
    if not isinstance(payload.get("seconds"), (int, float)):
        raise ValueError("'seconds' must be a number")
    return payload


def _run_pool(config: Config, items: list[Item], deadline: float | None, cache: Cache, say: ProgressFn,
              suite_results: dict[str, list[Result]], stateful_results: dict[str, dict[str, Any]],
              partial: dict[str, list[Result]], items_state: dict[str, str], history: dict[str, Any]) -> bool:
    """Run ``items`` in the pool until done or the deadline; True when the budget cut it short."""
    with tempfile.TemporaryDirectory(prefix="pcpu-verify-check-") as tmp:
        pool = _Pool(min(config.workers, len(items)), config.plugins)
        futures: dict[Future[Any], tuple[Item, Path]] = {}
        seen_rows: dict[str, int] = {}
        started: dict[str, float] = {}
        try:
            for i, item in enumerate(items):
                rows_file = Path(tmp) / f"item{i}.jsonl"
                futures[pool.submit(item, str(rows_file))] = (item, rows_file)
                say(Progress(item.label, "queued"))
            pending = set(futures)
            while pending:
                timeout = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.perf_counter()))
                done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                for f in done:
                    item, _ = futures[f]
                    _finish(f, item, cache, say, suite_results, stateful_results, items_state, history,
                            time.perf_counter() - started.get(item.label, time.perf_counter()))
                for f in pending:
                    item, rows_file = futures[f]
                    if f.running() and item.label not in started:
                        started[item.label] = time.perf_counter()
                        say(Progress(item.label, "start"))
                    if isinstance(item, SuiteItem) and rows_file.exists():
                        n = rows_file.read_text(encoding="utf-8").count("\n")
                        if n != seen_rows.get(item.label, 0):
                            seen_rows[item.label] = n
                            say(Progress(item.label, "row", done=n, total=len(suite_rows(item.invariants, item.ops))))
                if pending and deadline is not None and time.perf_counter() >= deadline:
                    pool.stop()
                    for f in pending:
                        item, rows_file = futures[f]
                        partial[item.label] = _streamed(rows_file) if isinstance(item, SuiteItem) else []
                        items_state[item.label] = "partial" if partial[item.label] else "not run"
                        say(Progress(item.label, "not run", "the budget ran out"))
                    return True
        except BaseException:
            pool.stop()  # Ctrl-C: end the workers; no entry of theirs is written
            raise
        pool.close()
    return False


def _finish(f: Future[Any], item: Item, cache: Cache, say: ProgressFn, suite_results: dict[str, list[Result]],
            stateful_results: dict[str, dict[str, Any]], items_state: dict[str, str],
            history: dict[str, Any], seconds: float) -> None:
    value = f.result()  # a worker's exception is a bug of ours: let it surface
    items_state[item.label] = "ran"
    if isinstance(item, (SuiteItem, LayoutItem)):
        suite_results[item.label] = value
        if not any(r.verdict is Verdict.UNKNOWN for r in value):  # UNKNOWN is never cached
            cache.put(item.key, [result_to_json(r) for r in value])
        say(Progress(item.label, "done", f"{len(value)} rows"))
    elif isinstance(item, StatefulItem):
        stateful_results[item.label] = value
        cache.put(item.key, value)
        say(Progress(item.label, "done", f"{len(value['broken'])} invariants broken"))
    cache.release(item.key)  # a check waiting for this entry reads it now (or, if UNKNOWN, computes it)
    entry = history.setdefault(item.label, {})
    if isinstance(entry, dict) and not isinstance(item, MinimiseItem):
        entry["seconds"] = round(seconds, 2)


def _suite_check_rows(s: SuiteItem, results: list[Result], baseline: Baseline, cached: bool,
                      finished: bool) -> list[Row]:
    by_row = {(r.invariant, r.op): r for r in results}
    nonconformant = next((r for r in results if r.verdict is Verdict.NONCONFORMANT), None)
    owed = suite_rows(s.invariants, s.ops)
    extra = [key for key in by_row if key not in set(owed)]  # rows a newer run_suite reports: compared too
    out = []
    for inv, op in [*owed, *extra]:
        expected = baseline.expected(s.variant, s.geometry.name, inv, op)
        r = by_row.get((inv, op))
        if r is None:
            if nonconformant is not None:  # conformance failed before this row: nothing is proved
                r = replace(nonconformant, invariant=inv, op=op)
            elif finished:
                out.append(Row("proof", s.variant, s.geometry.name, inv, op, "MISSING", expected, Outcome.CHANGED,
                               detail="the suite did not report this row"))
                continue
            else:
                out.append(Row("proof", s.variant, s.geometry.name, inv, op, NOT_RUN, expected, Outcome.NOT_RUN,
                               detail="the budget ran out before this obligation was reached"))
                continue
        outcome = _outcome(r.verdict.value, expected, Verdict.VIOLATED.value)
        detail = r.detail
        if expected is None and outcome.regression:
            detail = (detail + "; " if detail else "") + "not in the baseline"
        elif r.verdict is Verdict.NOT_INDUCTIVE:
            detail = f"no violation within {r.depth} ops; counterexample to induction: {r.cti['op'] if r.cti else ''}"
        out.append(Row("proof", s.variant, s.geometry.name, inv, op, r.verdict.value, expected, outcome,
                       r.seconds, cached, detail, r.trace))
    return out


def _layout_check_rows(lay: LayoutItem, results: list[Result], baseline: Baseline, cached: bool,
                       finished: bool) -> list[Row]:
    """Every layout row owed (``layout_rows``), each held to the baseline like a suite row."""
    by_row = {(r.geometry, r.invariant): r for r in results if r.op == LAYOUT_OP}
    owed = layout_rows(lay.properties)
    extra = [key for key in by_row if key not in set(owed)
             and (lay.properties is None or key[1] in lay.properties)]  # a newer run_layout_suite's rows
    out = []
    for geometry, name in [*owed, *extra]:
        expected = baseline.expected(lay.variant, geometry, name, LAYOUT_OP)
        r = by_row.get((geometry, name))
        if r is None:
            if finished:
                out.append(Row("proof", lay.variant, geometry, name, LAYOUT_OP, "MISSING", expected, Outcome.CHANGED,
                               detail="the layout suite did not report this row"))
            else:
                out.append(Row("proof", lay.variant, geometry, name, LAYOUT_OP, NOT_RUN, expected, Outcome.NOT_RUN,
                               detail="the budget ran out before the layout proofs finished"))
            continue
        outcome = _outcome(r.verdict.value, expected, Verdict.VIOLATED.value)
        detail = r.detail
        if expected is None and outcome.regression:
            detail = (detail + "; " if detail else "") + "not in the baseline"
        findings = dict(r.extra)
        if r.verdict is Verdict.VIOLATED:
            findings["description"] = r.detail  # the breaking inputs in words: the baseline keeps it
        out.append(Row("proof", lay.variant, geometry, name, LAYOUT_OP, r.verdict.value, expected, outcome,
                       r.seconds, cached, detail, layout=findings))
    return out


def _stateful_check_rows(st: StatefulItem, found: dict[str, Any] | None, baseline: Baseline, config: Config,
                         cached: bool) -> list[Row]:
    known = baseline.stateful.get(st.variant, {})
    recorded = baseline.stateful_examples is not None
    # Another number of examples samples more or less, it does not change what holds: still held to the
    # baseline, the difference reported as coverage (fewer examples may miss a known violation, below).
    coverage = "" if baseline.stateful_examples in (None, config.stateful_examples) else (
        f"coverage: {config.stateful_examples} examples, the baseline's {baseline.stateful_examples}")
    out = []
    for inv in (i.name for i in INVARIANTS):  # the 2017 chunk's: the variants the stateful machines run
        expected = ("BROKEN" if inv in known else "HELD") if recorded else None
        if found is None:
            out.append(Row("stateful", st.variant, "stateful", inv, "stateful", NOT_RUN, expected, Outcome.NOT_RUN,
                           detail="the budget ran out before the stateful machines ran"))
            continue
        broken = found["broken"].get(inv)
        verdict = "BROKEN" if broken is not None else "HELD"
        outcome = _outcome(verdict, expected, "BROKEN")
        detail = ""
        if outcome is Outcome.VIOLATION_GONE:
            # a sampled search that misses a known violation shows nothing: the
            # regression traces replay every known one deterministically
            outcome = Outcome.OK
            detail = f"known violation not reached within {config.stateful_examples} examples"
        if expected is None and outcome.regression:
            detail = "the baseline has no stateful section; record it with --update-baseline"
        detail = "; ".join(d for d in (detail, coverage) if d)
        out.append(Row("stateful", st.variant, "stateful", inv, "stateful", verdict, expected, outcome,
                       found["seconds"] / max(len(INVARIANTS), 1), cached, detail, broken))
    return out


def _minimise_new_violations(config: Config, rows: list[Row], suites: list[SuiteItem], deadline: float | None,
                             cache: Cache, say: ProgressFn, items_state: dict[str, str]) -> list[Row]:
    by_label = {s.label: s for s in suites}
    wanted: dict[int, MinimiseItem] = {}
    for i, r in enumerate(rows):
        if r.kind != "proof" or r.outcome is not Outcome.NEW_VIOLATION or not r.trace or not r.trace.get("ops"):
            continue  # a layout row has no trace: its counterexample is already minimal (proofs/layout.py)
        s = by_label[f"{r.variant} {r.geometry}"]
        wanted[i] = MinimiseItem(r.variant, s.geometry, r.invariant, r.op, len(r.trace["ops"]),
                                 config.suite_options.solver, minimise_key(s.key, r.invariant, r.op))
    if not wanted:
        return rows
    out = list(rows)

    def cached(i: int, m: MinimiseItem) -> bool:
        hit = cache.get(m.key, lambda p: trace_from_json(p).to_json())
        if hit is not None:
            out[i] = replace(out[i], minimised=hit)
        return hit is not None

    try:  # the suites' two phases (run_check): ours first, then those another check was computing
        todo: dict[int, MinimiseItem] = {}
        busy: dict[int, MinimiseItem] = {}
        for i, m in wanted.items():
            if not cache.claim(m.key):
                busy[i] = m
            elif cached(i, m):
                cache.release(m.key)
            else:
                todo[i] = m
        _minimise(config, todo, deadline, cache, say, out)
        cache.release_all()
        todo = {}
        for i, m in busy.items():
            if cache.wait(m.key, deadline):
                cache.release(m.key)
                if not cached(i, m):
                    todo[i] = m
        _minimise(config, todo, deadline, cache, say, out)
    finally:
        cache.release_all()
    return out


def _minimise(config: Config, todo: dict[int, MinimiseItem], deadline: float | None, cache: Cache,
              say: ProgressFn, out: list[Row]) -> None:
    """Minimise ``todo`` (row index -> item) in the pool within the deadline, into ``out``; cache each trace."""
    if not todo or (deadline is not None and time.perf_counter() >= deadline):
        return
    pool = _Pool(min(config.workers, len(todo)), config.plugins)
    try:
        futures = {pool.submit(m, None): i for i, m in todo.items()}
        for m in todo.values():
            say(Progress(m.label, "start"))
        remaining = None if deadline is None else max(0.0, deadline - time.perf_counter())
        done, pending = wait(futures, timeout=remaining)
        for f in done:
            i = futures[f]
            value = f.result()
            if value is not None:
                cache.put(todo[i].key, value)
                out[i] = replace(out[i], minimised=value)
            cache.release(todo[i].key)  # no trace (its replay failed): a waiting check computes its own
            say(Progress(todo[i].label, "done"))
        if pending:
            pool.stop()
            return
    except BaseException:
        pool.stop()
        raise
    pool.close()


def baseline_from(run: CheckRun, old: Baseline) -> Baseline:
    """The baseline that makes ``run`` pass: its rows replace the old ones.

    Without an --invariant/--op filter a suite's entry is replaced whole (so
    rows of a removed invariant go); with one, only the rows run change.
    """
    suites: dict[str, Any] = json.loads(json.dumps(old.suites))
    proof_rows = [r for r in run.rows if r.kind == "proof"]
    if run.config.invariants is None and run.config.ops is None:
        for variant, geometry in {(r.variant, r.geometry) for r in proof_rows}:
            suites.setdefault(variant, {})[geometry] = {}
    for r in proof_rows:
        entry: Any = r.verdict
        if r.verdict == Verdict.VIOLATED.value and r.op == LAYOUT_OP:
            entry = {"verdict": r.verdict, "counterexample": (r.layout or {}).get("description", "")}
        elif r.verdict == Verdict.VIOLATED.value:
            entry = {"verdict": r.verdict, "trace": r.trace}
        suites.setdefault(r.variant, {}).setdefault(r.geometry, {}).setdefault(r.invariant, {})[r.op] = entry
    stateful: dict[str, Any] = json.loads(json.dumps(old.stateful))
    examples = old.stateful_examples
    state_rows = [r for r in run.rows if r.kind == "stateful"]
    if state_rows:
        if examples != run.config.stateful_examples:
            stateful = {}  # recorded with another budget: it no longer describes anything
        examples = run.config.stateful_examples
        for variant in {r.variant for r in state_rows}:
            stateful[variant] = {r.invariant: r.trace for r in state_rows
                                 if r.variant == variant and r.verdict == "BROKEN"}
    # sorted variants and geometries, rows in the suite's order: a re-run rewrites the file identically
    suites = {v: {g: suites[v][g] for g in sorted(suites[v])} for v in sorted(suites)}
    return Baseline(suites, examples, {v: stateful[v] for v in sorted(stateful)})
