"""The baseline (``baseline.json``): the expected verdict of every row, read and written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcpuverify.check.obligation import (
    GeometrySetting,
    LayoutSetting,
    Obligation,
    SourceSetting,
    StatefulRun,
    setting_from_label,
)
from pcpuverify.check.outcomes import BASELINE_FORMAT, NOT_RUN, TOOL_FAILURES, CheckError, Outcome
from pcpuverify.model.trace import TraceError, read_input, trace_from_json
from pcpuverify.proofs.blocks.labels import BlockLabel
from pcpuverify.proofs.results import Verdict


@dataclass
class Baseline:
    """Per variant and geometry, the expected verdict of every row, with the trace of each known violation.

    ``suites[variant][setting][invariant][op]`` is a verdict string, or for
    a VIOLATED row ``{"verdict": "VIOLATED", "trace": {...}}`` -- for a
    layout row (setting "page4096/<set>", op "layout"), which has no
    operations to replay, ``{"verdict": "VIOLATED", "counterexample": "..."}``
    with the inputs that break it, in words; ``setting`` is the label of a
    ``GeometrySetting`` or a ``LayoutSetting`` (check/obligation.py), checked
    when the file is read.  ``stateful`` holds, per variant, the invariants
    the machines break within ``stateful_examples`` examples (with their traces).
    ``sources[subject][geometry][invariant][op]`` is a C subject's row (a
    ``SourceSetting``, check/csubject.py): HOLDS-TO-DEPTH, or ``{"verdict":
    "VIOLATED", "trace": {...}}`` with the C trace that breaks it.
    """

    suites: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    stateful_examples: int | None = None
    stateful: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)

    def expected(self, key: Obligation) -> str | None:
        """The verdict the baseline expects of ``key``; None for a row it does not list (or a replay: see below).

        Of the stateful machines: BROKEN for an invariant they break, HELD for
        the others, None when the baseline has no stateful section.  A replayed
        trace expects no verdict here: it must reproduce what it claims.
        """
        if isinstance(key.setting, StatefulRun):
            if self.stateful_examples is None:
                return None
            return "BROKEN" if key.invariant in self.stateful.get(key.subject, {}) else "HELD"
        rows = self.sources if isinstance(key.setting, SourceSetting) else self.suites
        entry = rows.get(key.subject, {}).get(key.setting.label, {}).get(key.invariant, {}).get(key.op)
        return entry["verdict"] if isinstance(entry, dict) else entry

    def known_violations(self) -> Iterator[tuple[Obligation, dict[str, Any]]]:
        """Every row the baseline holds a trace for (a suite's VIOLATED row, a stateful finding), with the trace."""
        for variant, geos in self.suites.items():
            for label, invs in geos.items():
                setting = setting_from_label(label)  # load_baseline checked every label
                for inv, ops in invs.items():
                    for op, entry in ops.items():
                        if (isinstance(setting, GeometrySetting) and isinstance(entry, dict)
                                and entry.get("trace") is not None):
                            yield Obligation(variant, setting, inv, op), entry["trace"]
        for variant, broken in self.stateful.items():
            for inv, trace in broken.items():
                yield Obligation(variant, StatefulRun(), inv), trace

    def as_parent_of(self, children: tuple[str, ...], parent: str) -> Baseline:
        """This baseline with ``parent``'s rows expected of every child, its traces replayed on the child.

        So that a patch on ``parent`` is reported by what it moved -- violations gained, violations lost,
        verdicts changed -- and never by the parent's known findings as new ones.
        """
        def on(child: str, data: Any) -> Any:
            """A row of the parent, its trace (if any) naming the child."""
            if isinstance(data, dict) and isinstance(data.get("trace"), dict):
                return {**data, "trace": {**data["trace"], "variant": child}}
            if isinstance(data, dict) and data.get("format"):  # a stateful trace
                return {**data, "variant": child}
            return data

        suites = dict(self.suites)
        stateful = dict(self.stateful)
        for child in children:
            suites[child] = {g: {i: {op: on(child, e) for op, e in ops.items()} for i, ops in invs.items()}
                             for g, invs in self.suites.get(parent, {}).items()}
            if parent in self.stateful:
                stateful[child] = {i: on(child, t) for i, t in self.stateful[parent].items()}
        return Baseline(suites, self.stateful_examples, stateful, self.sources)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "comment": "Expected verdicts of `pcpu-verify check`; regenerate with `pcpu-verify check --update-baseline`"
                       " and review the diff: a row that changes is a finding, never noise.",
            "suites": self.suites,
            "stateful": {"examples": self.stateful_examples, "broken": self.stateful},
            **({"sources": self.sources} if self.sources else {}),
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
            try:
                setting = setting_from_label(geometry)
            except ValueError as e:
                raise CheckError(f"{path}: suites.{variant}.{geometry}: not a geometry PAGESxBITS nor a layout"
                                 f" page<PAGE_SIZE>/<preconditions>: {e}") from None
            if isinstance(setting, StatefulRun):
                raise CheckError(f"{path}: suites.{variant}.{geometry}: the stateful rows live in 'stateful'")
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
                    if isinstance(setting, LayoutSetting) and op != setting.op:
                        raise CheckError(f"{where}: a layout row's op is {setting.op!r}")
                    if verdict == Verdict.VIOLATED.value and isinstance(setting, LayoutSetting):
                        # 64-bit inputs, not a sequence of operations: nothing to replay
                        if isinstance(entry, dict) and not isinstance(entry.get("counterexample", ""), str):
                            raise CheckError(f"{where}: a layout row's counterexample must be a string")
                    elif verdict == Verdict.VIOLATED.value and isinstance(setting.geometry, BlockLabel):
                        pass  # a block row's counterexample is a block, not a trace from a new chunk: none to replay
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
    return Baseline(suites, examples, broken, _sources(path, data.get("sources", {})))


def _sources(path: Path, sources: Any) -> dict[str, Any]:
    """The C subjects' rows, checked: subject -> geometry -> invariant -> op -> verdict (a VIOLATED one with its trace)."""
    from pcpuverify.check.csubject import HOLDS, VIOLATED
    from pcpuverify.counterexamples.kernel_search import CTrace

    if not isinstance(sources, dict):
        raise CheckError(f"{path}: 'sources' must be an object: C subject -> geometry -> invariant -> op -> verdict")
    for subject, geos in sources.items():
        for geometry, invs in geos.items() if isinstance(geos, dict) else [(None, None)]:
            for inv, ops in invs.items() if isinstance(invs, dict) else [(None, None)]:
                if not isinstance(ops, dict):
                    raise CheckError(f"{path}: sources.{subject}: must be geometry -> invariant -> op -> verdict")
                for op, entry in ops.items():
                    where = f"{path}: sources.{subject}.{geometry}.{inv}.{op}"
                    verdict = entry.get("verdict") if isinstance(entry, dict) else entry
                    if verdict not in (HOLDS, VIOLATED):
                        raise CheckError(f"{where}: the verdict must be {HOLDS} or {VIOLATED} (got {verdict!r})")
                    if verdict == VIOLATED:
                        if not isinstance(entry, dict) or not isinstance(entry.get("trace"), dict):
                            raise CheckError(f"{where}: a VIOLATED row needs its trace")
                        try:
                            CTrace.from_json(entry["trace"])
                        except TraceError as e:
                            raise CheckError(f"{where}: trace: {e}") from None
    return sources


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
