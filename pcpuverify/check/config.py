"""The check's configuration (``[tool.pcpu-verify]``), validated in full before anything runs, and plug-in variants."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the same parser, from PyPI
    import tomli as tomllib

from pcpuverify.check.obligation import LAYOUT_OP
from pcpuverify.check.outcomes import CONFIG_TABLE, CheckError
from pcpuverify.model.geometry import Geometry, GeometryError
from pcpuverify.proofs.blocks.labels import BlockLabel, is_block_label, parse_block_label
from pcpuverify.model.trace import read_input
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES
from pcpuverify.proofs.solver import MAX_RLIMIT, MAX_SEED, MAX_TIMEOUT, MIN_TIMEOUT, SOLVER_CHOICES, SolverOptions
from pcpuverify.proofs.suite import MAX_DEPTH, SuiteOptions
from pcpuverify.symbolic.bv import check_encodable
from pcpuverify.symbolic.subjects import SubjectError, inherited_layout, register

EXECUTORS = ("local", "dask")  # this machine's process pool, or Dask distributed (the `cluster` extra)

CONFIG_KEYS: dict[str, str] = {
    "variants": "a list of variant names",
    "geometries": "a list of geometries PAGESxBITS, e.g. [\"1x8\"], or compositional labels blockBITS and"
                  " NxblockBITS, e.g. \"block1024\"",
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
# Keys a config may leave out (a config written before them stays valid), with their defaults.
OPTIONAL_KEYS: dict[str, tuple[str, Any]] = {
    "sources": (("a list of kernel sources (a tree, its mm/ folder or mm/percpu.c), relative to the config file:"
                 " each a C subject, searched on its user-space build at every geometry"), []),
    "solver": (f"who answers each query, one of {', '.join(SOLVER_CHOICES)} (default z3: with cvc5, the"
               " deterministic mode; bitwuzla and portfolio are bounded by the clock, so an UNKNOWN can differ"
               " between machines)", "z3"),
    "search-walks": ("random walks on the model for a row bounded model checking and the traces leave NOT-INDUCTIVE,"
                     " an integer from 0 (none)", SuiteOptions.search_walks),
    "search-states": ("then distinct states of a breadth-first search on the model for the state invariants' rows"
                      " still NOT-INDUCTIVE, an integer from 0 (none)", SuiteOptions.search_states),
    "block-states": ("then the rows still NOT-INDUCTIVE asked again under a closed set of at most this many block"
                     " states (and of chunk_md's hints), an integer from 0 (none)", SuiteOptions.block_states),
}


@dataclass(frozen=True)
class Config:
    """What to check and how; every key of ``[tool.pcpu-verify]`` is required (CONFIG_KEYS) but OPTIONAL_KEYS."""

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
    sources: tuple[Path, ...] = ()  # kernel sources: C subjects (check/csubject.py)
    invariants: frozenset[str] | None = None  # only these invariants (a filter of the matrix)
    ops: frozenset[str] | None = None
    plugins: tuple[Path, ...] = ()
    against: str | None = None  # hold every variant to this subject's baseline rows (what a patch on it moved)
    executor: str = "local"  # where the items run: one of EXECUTORS (check/executors.py)
    scheduler: str | None = None  # the Dask scheduler's address; None: a LocalCluster for the run
    solver: str = OPTIONAL_KEYS["solver"][1]  # proofs/solver.py SOLVER_CHOICES
    search_walks: int = OPTIONAL_KEYS["search-walks"][1]  # proofs/suite.py SuiteOptions.search_walks
    search_states: int = OPTIONAL_KEYS["search-states"][1]  # proofs/suite.py SuiteOptions.search_states
    block_states: int = OPTIONAL_KEYS["block-states"][1]  # proofs/suite.py SuiteOptions.block_states

    @property
    def suite_options(self) -> SuiteOptions:
        return SuiteOptions(solver=SolverOptions(rlimit=self.rlimit, seed=self.seed, timeout=self.timeout,
                                                 solver=self.solver), depth=self.depth,
                            search_walks=self.search_walks, search_states=self.search_states,
                            block_states=self.block_states)

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

    def geometry_objects(self) -> list[Geometry | BlockLabel]:
        """The geometries, and the compositional labels (``block1024``, ``4xblock1024``) as they are."""
        out: list[Geometry | BlockLabel] = []
        for i, spec in enumerate(self.geometries):
            try:
                if is_block_label(spec):
                    out.append(parse_block_label(spec))
                    continue
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
    unknown = sorted(set(table) - set(CONFIG_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise CheckError(f"{path}: [{CONFIG_TABLE}]: unknown key {unknown[0]!r}; the keys are"
                         f" {', '.join([*CONFIG_KEYS, *OPTIONAL_KEYS])}")
    missing = [k for k in CONFIG_KEYS if k not in table]
    if missing:
        raise CheckError(f"{path}: [{CONFIG_TABLE}]: missing key {missing[0]!r} ({CONFIG_KEYS[missing[0]]})")
    values = {**{key: default for key, (_, default) in OPTIONAL_KEYS.items()}, **table}
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    return _validated(path, values)


def _validated(path: Path, v: dict[str, Any]) -> Config:
    where = f"{path}: [{CONFIG_TABLE}]"

    def bad(key: str) -> CheckError:
        what = CONFIG_KEYS[key] if key in CONFIG_KEYS else OPTIONAL_KEYS[key][0]
        return CheckError(f"{where}: {key!r} must be {what} (got {v[key]!r})")

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
    executor = v.get("executor") or "local"
    if executor not in EXECUTORS:
        raise CheckError(f"executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if v.get("scheduler") and executor != "dask":
        raise CheckError("--scheduler names a Dask scheduler: it needs --executor dask")
    if v["solver"] not in SOLVER_CHOICES:
        raise bad("solver")
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
        # sources from the command line come resolved (relative to where it runs); the file's are relative to it
        sources=tuple((path.parent / s).resolve() for s in strings("sources")),
        invariants=frozenset(v["invariants"]) if v.get("invariants") else None,
        ops=frozenset(v["ops"]) if v.get("ops") else None,
        plugins=tuple(Path(p).resolve() for p in v.get("plugins") or ()),
        against=v.get("against"),
        executor=executor,
        scheduler=v.get("scheduler") or None,
        solver=v["solver"],
        search_walks=integer("search-walks", 0),
        search_states=integer("search-states", 0),
        block_states=integer("block-states", 0),
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
