"""The run: schedule the items on worker processes within the budget, hold every row to the baseline.

``run_check`` and what it shares its state with (cache, deadline, partial results): the pool, the
waits for another check's entries, minimisation.  The rows themselves are built in check/rows.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pcpuverify.check.baseline import Baseline, load_baseline
from pcpuverify.check.cache import Cache, CacheStats, _layout_payload, _suite_payload, result_to_json
from pcpuverify.check.config import Config, load_plugin
from pcpuverify.check.csubject import (
    CItem,
    c_items,
    c_payload,
    load_c_source,
    minimise_c_row,
)
from pcpuverify.check.executors import Executor, open_executor, require_dask
from pcpuverify.check.keys import layout_key, minimise_key, stateful_key, suite_key
from pcpuverify.check.matrix import suite_obligations
from pcpuverify.check.obligation import (
    LAYOUT_OP,
    FirstChunkStart,
    GeometrySetting,
    LayoutSetting,
    Replay,
    SourceSetting,
    StatefulRun,
)
from pcpuverify.check.outcomes import CheckError, Outcome, Row
from pcpuverify.check.rows import (
    c_check_rows,
    layout_check_rows,
    replay_row,
    stateful_check_rows,
    suite_check_rows,
)
from pcpuverify.check.workers import (
    Item,
    LayoutItem,
    MinimiseItem,
    StatefulItem,
    SuiteItem,
    _owns,
)
from pcpuverify.exits import EXIT_OK, EXIT_TOOL_FAILURE, EXIT_UNDECIDED, EXIT_VIOLATION
from pcpuverify.invariants.check import invariant, last_step_breaks
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.blocks.labels import BlockLabel
from pcpuverify.proofs.blocks.suite import ROW_NAMES as BLOCK_ROW_NAMES
from pcpuverify.model.ops import FirstChunkInit
from pcpuverify.model.trace import load_trace, trace_from_json, write_atomically
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES
from pcpuverify.proofs.obligations import OPS
from pcpuverify.proofs.results import Result, Verdict
from pcpuverify.proofs.termination import stop_if_terminated
from pcpuverify.symbolic.subjects import SubjectError, subject


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
        if any(r.outcome.regression and (isinstance(r.key.setting, Replay) or not self.update_baseline)
               for r in self.rows):
            return EXIT_VIOLATION
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
                       "stateful_examples": self.config.stateful_examples, "layout": self.config.layout,
                       "sources": [str(p) for p in self.config.sources]},
            "baseline": str(self.config.baseline),
            "baseline_written": str(self.baseline_written) if self.baseline_written else None,
        }


ProgressFn = Callable[[Progress], None]


def validate(config: Config) -> list[Geometry | BlockLabel]:
    """Check every input before running anything: the executor, plugins, variants, sources, geometries, filters."""
    if config.executor == "dask":
        require_dask()
    for plugin in config.plugins:
        load_plugin(plugin)
    for path in config.sources:
        load_c_source(path)
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
        if name not in BLOCK_ROW_NAMES:  # a block contract names a compositional row
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
    geometries = config.geometry_objects()
    filters = config.suite_filters
    if (config.invariants is not None or config.ops is not None) and not config.sources:
        suite_rows = filters is not None and any(
            suite_obligations(v, g, *filters) for v in config.variants for g in geometries if runs_suite(v, g))
        layout_rows = config.layout_properties != frozenset() and any(subject(v).proves_layout
                                                                      for v in config.variants)
        if not suite_rows and not layout_rows:  # a gate that checked nothing may not pass
            raise CheckError("the --invariant/--op filters select no obligation of this matrix's variants and"
                             " geometries (a block contract needs a block label, a suite invariant a PAGESxBITS"
                             " geometry; a block label has no --op rows)")
    return geometries


def runs_suite(variant: str, geometry: Geometry | BlockLabel) -> bool:
    """Whether ``variant`` has a suite on ``geometry``: a compositional label only for a subject with block
    contracts for it (``Subject.proves_labels``: none for 4.14)."""
    return not isinstance(geometry, BlockLabel) or subject(variant).proves_labels


def regression_traces(config: Config) -> list[tuple[Path, Any]]:
    """Every trace file under the configured directories, loaded (a malformed one is a TraceError)."""
    out = []
    for folder in config.traces:
        if not folder.is_dir():
            raise CheckError(f"traces: {folder}: no such directory")
        for path in sorted(folder.rglob("*.json")):
            out.append((path, load_trace(path)))
    return out


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


def run_check(config: Config, progress: ProgressFn | None = None, update_baseline: bool = False) -> CheckRun:
    """Run the whole check for ``config`` and compare it with the baseline (or rewrite the baseline)."""
    executor = open_executor(config)
    try:
        return _run_check(config, executor, progress, update_baseline)
    finally:
        executor.close()  # also on Ctrl-C and SIGTERM: no worker of ours outlives the run


def _run_check(config: Config, executor: Executor, progress: ProgressFn | None, update_baseline: bool) -> CheckRun:
    started = time.perf_counter()
    deadline = started + config.budget if config.budget else None
    say = progress or (lambda p: None)
    geometries = validate(config)
    baseline = load_baseline(config.baseline, required=not update_baseline)
    if config.against is not None:
        if update_baseline:
            raise CheckError("--against compares with another variant's rows; it does not write a baseline")
        subject(config.against)  # an unknown name is one line, as for --variant
        if config.against not in baseline.suites:
            raise CheckError(f"--against {config.against}: the baseline {config.baseline.name} has no rows for it")
        baseline = baseline.as_parent_of(config.variants, config.against)
    traces = regression_traces(config)
    cache = Cache(config.cache_dir, lambda message: say(Progress("cache", "warning", message)))
    history = cache.history()

    rows: list[Row] = []
    items_state: dict[str, str] = {}

    # 1. regression traces and the baseline's known-violation traces: milliseconds each, run here
    for path, trace in traces:
        origin = FirstChunkStart() if isinstance(trace.init, FirstChunkInit) else GeometrySetting(trace.geometry)
        rows.append(replay_row(trace.variant, Replay(origin), trace, _relative(path, config.root)))
    if not update_baseline:
        for found, data in baseline.known_violations():
            if found.subject not in config.variants:
                continue
            assert isinstance(found.setting, (GeometrySetting, StatefulRun))
            rows.append(replay_row(found.subject, Replay(found.setting, known=True), trace_from_json(data),
                                    f"{config.baseline.name}: {found.invariant} / {found.op}"))
    say(Progress("regression traces", "done", f"{len(rows)} traces replayed"))

    # 2. the proof suites, the layout proofs and 3. the stateful machines: from the cache, or in the pool
    suites: list[SuiteItem] = []
    filters = config.suite_filters
    for variant in config.variants if filters is not None else ():
        for g in geometries:
            if not runs_suite(variant, g) or isinstance(g, BlockLabel) and filters[1] is not None:
                continue  # as in prove: an --op filter names the suite's operations, not the block functions
            if isinstance(g, BlockLabel) and not suite_obligations(variant, g, *filters):
                continue  # an --invariant filter that names none of this variant's block rows
            key = suite_key(config, variant, g)
            estimate = 60.0 if isinstance(g, BlockLabel) else 0.6 * g.nr_bits ** 1.5 * config.depth
            suites.append(SuiteItem(variant, g, config.suite_options, *filters, key,
                                    estimate=estimate, witnesses=config.traces))
    layouts: list[LayoutItem] = []
    if config.layout_properties != frozenset():
        for variant in (v for v in config.variants if subject(v).proves_layout):
            layouts.append(LayoutItem(variant, config.suite_options.solver, config.layout_properties,
                                      layout_key(config, variant)))
    statefuls: list[StatefulItem] = []
    if config.stateful_examples:
        for variant in config.variants:
            statefuls.append(StatefulItem(variant, config.stateful_examples, stateful_key(config, variant),
                                          estimate=0.16 * config.stateful_examples))

    # the C search runs on chunk geometries: a compositional label has none (its block rows run on the model)
    chunk_geometries = [g for g in geometries if isinstance(g, Geometry)]
    citems = c_items(config.sources, config.root, chunk_geometries, config.depth, config.stateful_examples,
                     config.seed)

    suite_results: dict[str, list[Result]] = {}  # suites and layout suites, by label
    stateful_results: dict[str, dict[str, Any]] = {}  # the stateful machines and the C sources, by label
    partial: dict[str, list[Result]] = {}

    def from_cache(item: SuiteItem | LayoutItem | StatefulItem | CItem) -> bool:
        """Fill in ``item``'s results from its cache entry; False when there is none to use."""
        if isinstance(item, (StatefulItem, CItem)):
            found = cache.get(item.key, _stateful_payload if isinstance(item, StatefulItem) else c_payload)
            if found is None:
                return False
            stateful_results[item.label] = found
            broken = len(found["broken"]) if isinstance(item, StatefulItem) else sum(map(len, found["found"].values()))
            message = f"{broken} broken, from the cache"
        else:
            parse = (_suite_payload(suite_obligations(item.variant, item.geometry, item.invariants, item.ops),
                                    GeometrySetting(item.geometry))
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
        busy: list[SuiteItem | LayoutItem | StatefulItem | CItem] = []  # another check is computing these
        for item in [*suites, *layouts, *statefuls, *citems]:
            if not cache.claim(item.key):
                busy.append(item)
                say(Progress(item.label, "waiting", "another check is computing it: its result will be used"))
            elif from_cache(item):
                cache.release(item.key)
            else:
                todo.append(item)  # its lock is held until its entry is written (or the run ends)
        if todo:
            budget_exhausted = _run_pool(config, executor, _order(todo, history), deadline, cache, say,
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
            budget_exhausted |= _run_pool(config, executor, _order(todo, history), deadline, cache, say,
                                          suite_results, stateful_results, partial, items_state, history)
    finally:
        cache.release_all()

    # compare
    for s in suites:
        results = suite_results.get(s.label)
        cached = items_state.get(s.label) == "cached"
        done = results if results is not None else partial.get(s.label, [])
        rows += suite_check_rows(s, done, baseline, cached, finished=results is not None)
    for lay in layouts:
        results = suite_results.get(lay.label)
        rows += layout_check_rows(lay, results or [], baseline, items_state.get(lay.label) == "cached",
                                   finished=results is not None)
    for st in statefuls:
        rows += stateful_check_rows(st, stateful_results.get(st.label), baseline, config.stateful_examples,
                                     cached=items_state.get(st.label) == "cached")
    for ci in citems:
        rows += c_check_rows(ci, stateful_results.get(ci.label), baseline, items_state.get(ci.label) == "cached")

    # 4. minimise the trace of every new violation (cached too), within what is left of the budget
    if not update_baseline:
        rows = _minimise_new_violations(config, executor, rows, suites, deadline, cache, say, items_state)
        rows = _minimise_new_c_violations(config, rows, citems, deadline, say)

    for s in [*suites, *layouts, *statefuls, *citems]:
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


def _run_pool(config: Config, executor: Executor, items: list[Item], deadline: float | None, cache: Cache,
              say: ProgressFn, suite_results: dict[str, list[Result]], stateful_results: dict[str, dict[str, Any]],
              partial: dict[str, list[Result]], items_state: dict[str, str], history: dict[str, Any]) -> bool:
    """Run ``items`` in a pool of the executor until done or the deadline; True when the budget cut it short."""
    pool = executor.pool(min(config.workers, len(items)))
    futures: dict[Future[Any], Item] = {}
    seen_rows: dict[str, int] = {}
    started: dict[str, float] = {}
    try:
        for item in items:
            futures[pool.submit(item)] = item
            say(Progress(item.label, "queued"))
        pending = set(futures)
        while pending:
            timeout = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.perf_counter()))
            done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            stop_if_terminated()
            for f in done:
                item = futures[f]
                _finish(f, item, cache, say, suite_results, stateful_results, items_state, history,
                        time.perf_counter() - started.get(item.label, time.perf_counter()))
            for f in pending:
                item = futures[f]
                if item.label not in started and pool.started(f):
                    started[item.label] = time.perf_counter()
                    say(Progress(item.label, "start"))
                if isinstance(item, SuiteItem):
                    n = len(pool.streamed(f))
                    if n != seen_rows.get(item.label, 0):
                        seen_rows[item.label] = n
                        say(Progress(item.label, "row", done=n, total=len(suite_obligations(item.variant, item.geometry, item.invariants, item.ops))))
            if pending and deadline is not None and time.perf_counter() >= deadline:
                streamed = {f: pool.streamed(f) if isinstance(futures[f], SuiteItem) else [] for f in pending}
                pool.stop()
                for f in pending:
                    item = futures[f]
                    partial[item.label] = streamed[f]
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
    elif isinstance(item, CItem):
        stateful_results[item.label] = value
        cache.put(item.key, value)
        say(Progress(item.label, "done", f"{sum(map(len, value['found'].values()))} rows broken on the C"))
    cache.release(item.key)  # a check waiting for this entry reads it now (or, if UNKNOWN, computes it)
    entry = history.setdefault(item.label, {})
    if isinstance(entry, dict) and not isinstance(item, MinimiseItem):
        entry["seconds"] = round(seconds, 2)


def _minimise_new_violations(config: Config, executor: Executor, rows: list[Row], suites: list[SuiteItem],
                             deadline: float | None, cache: Cache, say: ProgressFn,
                             items_state: dict[str, str]) -> list[Row]:
    by_setting = {(s.variant, GeometrySetting(s.geometry)): s for s in suites}
    wanted: dict[int, MinimiseItem] = {}
    for i, r in enumerate(rows):
        s = by_setting.get((r.key.subject, r.key.setting))  # a suite's row: a layout row has no trace to minimise
        if s is None or r.outcome is not Outcome.NEW_VIOLATION or not r.trace or not r.trace.get("ops"):
            continue
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
        _minimise(config, executor, todo, deadline, cache, say, out)
        cache.release_all()
        todo = {}
        for i, m in busy.items():
            if cache.wait(m.key, deadline):
                cache.release(m.key)
                if not cached(i, m):
                    todo[i] = m
        _minimise(config, executor, todo, deadline, cache, say, out)
    finally:
        cache.release_all()
    return out


def _minimise(config: Config, executor: Executor, todo: dict[int, MinimiseItem], deadline: float | None,
              cache: Cache, say: ProgressFn, out: list[Row]) -> None:
    """Minimise ``todo`` (row index -> item) in the executor within the deadline, into ``out``; cache each trace."""
    if not todo or (deadline is not None and time.perf_counter() >= deadline):
        return
    pool = executor.pool(min(config.workers, len(todo)))
    try:
        futures = {pool.submit(m): i for i, m in todo.items()}
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


def _minimise_new_c_violations(config: Config, rows: list[Row], citems: list[CItem], deadline: float | None,
                               say: ProgressFn) -> list[Row]:
    """Each new violation on a C source minimised there (in this process, within the budget); its trace written
    under the cache folder's ``c-traces/`` (when there is a cache) for ``replay --source``."""
    paths = {ci.subject: ci.path for ci in citems}
    directory = config.cache_dir / "c-traces" if config.cache_dir is not None else None
    out = []
    for r in rows:
        if isinstance(r.key.setting, SourceSetting) and r.outcome is Outcome.NEW_VIOLATION and r.trace is not None \
                and (deadline is None or time.perf_counter() < deadline):
            say(Progress(f"minimise {r.variant} {r.geometry} {r.invariant}", "start"))
            r = minimise_c_row(r, paths[r.variant], directory)
        out.append(r)
    return out


def _still_breaks(entry: Any, invariant_name: str) -> bool:
    """A baseline entry that is VIOLATED with a trace whose last operation, replayed on the model, breaks
    ``invariant_name`` from a state where it holds."""
    if not (isinstance(entry, dict) and entry.get("verdict") == Verdict.VIOLATED.value and entry.get("trace")):
        return False
    return last_step_breaks(trace_from_json(entry["trace"]), invariant_name)


def baseline_from(run: CheckRun, old: Baseline) -> Baseline:
    """The baseline that makes ``run`` pass: its rows replace the old ones.

    Without an --invariant/--op filter a suite's entry is replaced whole (so
    rows of a removed invariant go); with one, only the rows run change.
    """
    suites: dict[str, Any] = json.loads(json.dumps(old.suites))
    proof_rows = [r for r in run.rows if isinstance(r.key.setting, (GeometrySetting, LayoutSetting))]
    if run.config.invariants is None and run.config.ops is None:
        for variant, label in {(r.key.subject, r.key.setting.label) for r in proof_rows}:
            suites.setdefault(variant, {})[label] = {}
    for r in proof_rows:
        entry: Any = r.verdict
        if r.verdict == Verdict.VIOLATED.value and isinstance(r.key.setting, LayoutSetting):
            # a layout row still VIOLATED keeps its recorded counterexample: the solver's next model is another
            # description of the same finding, and rewriting it made every update touch rows it did not change
            before = old.suites.get(r.key.subject, {}).get(r.key.setting.label, {}).get(r.key.invariant, {})
            kept = before.get(r.key.op)
            entry = kept if isinstance(kept, dict) and kept.get("verdict") == r.verdict else {
                "verdict": r.verdict, "counterexample": (r.layout or {}).get("description", "")}
        elif r.verdict == Verdict.VIOLATED.value and not isinstance(r.key.setting.geometry, BlockLabel):
            # a block row's counterexample is a block: the verdict alone.  A row still VIOLATED keeps its recorded
            # trace while its last step still breaks the invariant from a state where it holds (the solver's next
            # model, or a carried witness, is another trace of the same finding, and rewriting it touched unchanged
            # rows)
            before = old.suites.get(r.key.subject, {}).get(r.key.setting.label, {}).get(r.key.invariant, {})
            kept = before.get(r.key.op)
            entry = kept if _still_breaks(kept, r.key.invariant) else {"verdict": r.verdict, "trace": r.trace}
        key = r.key
        ops = suites.setdefault(key.subject, {}).setdefault(key.setting.label, {}).setdefault(key.invariant, {})
        ops[key.op] = entry
    stateful: dict[str, Any] = json.loads(json.dumps(old.stateful))
    examples = old.stateful_examples
    state_rows = [r for r in run.rows if isinstance(r.key.setting, StatefulRun)]
    if state_rows:
        if examples != run.config.stateful_examples:
            stateful = {}  # recorded with another budget: it no longer describes anything
        examples = run.config.stateful_examples
        for variant in {r.variant for r in state_rows}:
            stateful[variant] = {r.invariant: r.trace for r in state_rows
                                 if r.variant == variant and r.verdict == "BROKEN"}
    sources: dict[str, Any] = json.loads(json.dumps(old.sources))
    c_rows = [r for r in run.rows if isinstance(r.key.setting, SourceSetting)]
    if run.config.invariants is None and run.config.ops is None:
        for name, label in {(r.key.subject, r.key.setting.label) for r in c_rows}:
            sources.setdefault(name, {})[label] = {}
    for r in c_rows:
        entry = {"verdict": r.verdict, "trace": r.trace} if r.trace is not None else r.verdict
        key = r.key
        sources.setdefault(key.subject, {}).setdefault(key.setting.label, {}).setdefault(key.invariant, {})[key.op] = entry
    # sorted variants and geometries, rows in the suite's order: a re-run rewrites the file identically
    suites = {v: {g: suites[v][g] for g in sorted(suites[v])} for v in sorted(suites)}
    sources = {v: {g: sources[v][g] for g in sorted(sources[v])} for v in sorted(sources)}
    return Baseline(suites, examples, {v: stateful[v] for v in sorted(stateful)}, sources)
