"""The rows of a check: what each item answered, held to the baseline by one row builder (``held_rows``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from pcpuverify.check.baseline import Baseline, _outcome
from pcpuverify.check.csubject import VIOLATED, CItem, c_answers, c_obligations
from pcpuverify.check.matrix import layout_obligations, suite_obligations
from pcpuverify.check.obligation import (
    LayoutSetting,
    Obligation,
    Replay,
    StatefulRun,
    obligation_of,
)
from pcpuverify.check.outcomes import NOT_RUN, Outcome, Row
from pcpuverify.check.workers import LayoutItem, StatefulItem, SuiteItem
from pcpuverify.invariants.check import INVARIANTS, replay as replay_trace
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.reference import OpError
from pcpuverify.proofs.results import Result, Verdict


def replay_row(variant: str, replay: Replay, trace: Any, source: str) -> Row:
    """A trace must still break the invariant it claims (or, without a claim, replay without error)."""
    start = time.perf_counter()
    key = Obligation(variant, replay, trace.violates or "replays")
    try:
        breaks = replay_trace(trace).breaks(trace.violates) if trace.violates else []
        verdict = "REPRODUCED" if (breaks or not trace.violates) else "NOT-REPRODUCED"
        detail = ", again ".join("in the initial state" if at < 0 else f"at step {at}" for at in breaks)
        detail = f"breaks it {detail}" if detail else ""
    except (OpError, LayoutError) as e:
        verdict, detail = "NOT-REPRODUCED", f"replay refused: {e}"
    expected = "REPRODUCED"
    outcome = Outcome.OK if verdict == expected else Outcome.VIOLATION_GONE
    return Row(key, verdict, expected, outcome, time.perf_counter() - start, detail=detail, trace=trace.to_json(),
               source=source)


@dataclass(frozen=True)
class Answer:
    """What a run found for one obligation, before it is held to the baseline."""

    verdict: str
    seconds: float = 0.0
    detail: str = ""
    trace: dict[str, Any] | None = None
    layout: dict[str, Any] | None = None
    explained: str = ""  # the detail shown instead of ``detail`` when the baseline lists the row


def held_rows(owed: list[Obligation], found: dict[Obligation, Answer], baseline: Baseline, *, cached: bool,
              finished: bool, violated: str, missing: str, not_run: str) -> list[Row]:
    """The one row builder: every obligation owed (and any other found), each held to the baseline.

    An owed obligation without an answer is MISSING (the item finished
    without it: a change) or NOT RUN (the budget cut the item short: never a
    pass); ``violated`` is the verdict that means "broken".
    """
    owed_set = set(owed)
    extra = [key for key in found if key not in owed_set]  # rows a newer item reports: compared too
    out = []
    for key in [*owed, *extra]:
        expected = baseline.expected(key)
        answer = found.get(key)
        if answer is None:
            out.append(Row(key, "MISSING", expected, Outcome.CHANGED, detail=missing) if finished else
                       Row(key, NOT_RUN, expected, Outcome.NOT_RUN, detail=not_run))
            continue
        outcome = _outcome(answer.verdict, expected, violated)
        detail = answer.detail
        if expected is None and outcome.regression:
            detail = (detail + "; " if detail else "") + "not in the baseline"
        elif answer.explained:
            detail = answer.explained
        out.append(Row(key, answer.verdict, expected, outcome, answer.seconds, cached, detail, answer.trace,
                       layout=answer.layout))
    return out


def suite_check_rows(s: SuiteItem, results: list[Result], baseline: Baseline, cached: bool,
                     finished: bool) -> list[Row]:
    """Every suite row owed (``suite_obligations``); NONCONFORMANT answers every row conformance stopped."""
    def answer(r: Result) -> Answer:
        explained = ""
        if r.verdict is Verdict.NOT_INDUCTIVE:
            explained = (f"no violation within {r.depth} ops; counterexample to induction:"
                         f" {r.cti['op'] if r.cti else ''}")
        return Answer(r.verdict.value, r.seconds, r.detail, r.trace, explained=explained)

    found = {obligation_of(r, s.geometry): answer(r) for r in results}
    owed = suite_obligations(s.variant, s.geometry, s.invariants, s.ops)
    nonconformant = next((r for r in results if r.verdict is Verdict.NONCONFORMANT), None)
    if nonconformant is not None:  # conformance failed before these rows: nothing is proved
        for key in owed:
            found.setdefault(key, answer(nonconformant))
    return held_rows(owed, found, baseline, cached=cached, finished=finished, violated=Verdict.VIOLATED.value,
                     missing="the suite did not report this row",
                     not_run="the budget ran out before this obligation was reached")


def layout_check_rows(lay: LayoutItem, results: list[Result], baseline: Baseline, cached: bool,
                      finished: bool) -> list[Row]:
    """Every layout row owed (``layout_obligations``), each held to the baseline like a suite row."""
    def answer(r: Result) -> Answer:
        findings = dict(r.extra)
        if r.verdict is Verdict.VIOLATED:
            findings["description"] = r.detail  # the breaking inputs in words: the baseline keeps it
        return Answer(r.verdict.value, r.seconds, r.detail, layout=findings)

    keys = [obligation_of(r) for r in results]
    found = {key: answer(r) for key, r in zip(keys, results) if isinstance(key.setting, LayoutSetting)
             and (lay.properties is None or key.invariant in lay.properties)}
    return held_rows(layout_obligations(lay.variant, lay.properties), found, baseline, cached=cached,
                     finished=finished, violated=Verdict.VIOLATED.value,
                     missing="the layout suite did not report this row",
                     not_run="the budget ran out before the layout proofs finished")


def stateful_check_rows(st: StatefulItem, found: dict[str, Any] | None, baseline: Baseline, examples: int,
                        cached: bool) -> list[Row]:
    """A row per invariant of the 2017 chunk (the variants the machines run): BROKEN or HELD, as the baseline says.

    A known violation the sampled search misses is no regression (the
    regression traces replay it); another number of ``examples`` is reported
    as coverage.
    """
    owed = [Obligation(st.variant, StatefulRun(), i.name) for i in INVARIANTS]
    answers = {} if found is None else {
        key: Answer("BROKEN" if found["broken"].get(key.invariant) is not None else "HELD",
                    found["seconds"] / max(len(INVARIANTS), 1), trace=found["broken"].get(key.invariant))
        for key in owed}
    rows = held_rows(owed, answers, baseline, cached=cached, finished=False, violated="BROKEN", missing="",
                     not_run="the budget ran out before the stateful machines ran")
    # Another number of examples samples more or less, it does not change what holds: still held to the
    # baseline, the difference reported as coverage (fewer examples may miss a known violation, below).
    coverage = "" if baseline.stateful_examples in (None, examples) else (
        f"coverage: {examples} examples, the baseline's {baseline.stateful_examples}")
    out = []
    for row in rows:
        if row.outcome is Outcome.NOT_RUN:
            out.append(row)
            continue
        detail, outcome = "", row.outcome
        if outcome is Outcome.VIOLATION_GONE:
            # a sampled search that misses a known violation shows nothing: the
            # regression traces replay every known one deterministically
            outcome = Outcome.OK
            detail = f"known violation not reached within {examples} examples"
        if row.expected is None and outcome.regression:
            detail = "the baseline has no stateful section; record it with --update-baseline"
        out.append(replace(row, outcome=outcome, detail="; ".join(d for d in (detail, coverage) if d)))
    return out


def c_check_rows(ci: CItem, payload: dict[str, Any] | None, baseline: Baseline, cached: bool) -> list[Row]:
    """Every row of a C subject at one geometry (check/csubject.py), held to the baseline's ``sources``."""
    found = {} if payload is None else {key: Answer(*answer) for key, answer in c_answers(ci, payload).items()}
    return held_rows(c_obligations(ci), found, baseline, cached=cached, finished=False, violated=VIOLATED,
                     missing="", not_run="the budget ran out before the search on the C ran")
