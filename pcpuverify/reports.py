"""The pre-merge check's reports: terminal summary, JUnit XML, SARIF 2.1.0 and a Markdown pull-request comment.

Each report is text built from a ``CheckRun``; writing it (atomically) is
the CLI's job.  SARIF results point at the ported function the failing
obligation exercises (``check.OP_FUNCTIONS``), as resolved on the variant's
class -- or, for a function of the port that is not a method (a layout row's
``pcpu_setup_first_chunk``, model/first_chunk.py), in its module -- with
every function the variant overrides as a related location.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pcpuverify import __version__
from pcpuverify.check import (
    OP_FUNCTIONS,
    CheckRun,
    LayoutSetting,
    Outcome,
    Replay,
    Row,
)
from pcpuverify.draw import draw_state
from pcpuverify.exits import EXIT_OK, EXIT_TOOL_FAILURE, EXIT_UNDECIDED, EXIT_VIOLATION
from pcpuverify.invariants.base import REGISTRY
from pcpuverify.invariants.check import replay
from pcpuverify.model import first_chunk
from pcpuverify.model.percpu import PcpuAllocator
from pcpuverify.model.reference import OpError
from pcpuverify.model.trace import trace_from_json
from pcpuverify.model.variants import VARIANTS
from pcpuverify.proofs.layout import LAYOUT_PROPERTIES

# The port's functions that are not methods of the allocator: where OP_FUNCTIONS may name one.
FUNCTION_MODULES = (first_chunk,)

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

VERDICT = {
    EXIT_OK: "PASSED",
    EXIT_VIOLATION: "FAILED: regression",
    EXIT_UNDECIDED: "FAILED: undecided (UNKNOWN or NOT RUN)",
    EXIT_TOOL_FAILURE: "FAILED: tool failure (VACUOUS, SPURIOUS or NONCONFORMANT)",
}

STYLE = {
    Outcome.OK: "green",
    Outcome.NEW_VIOLATION: "bold red",
    Outcome.VIOLATION_GONE: "bold red",
    Outcome.CHANGED: "bold red",
    Outcome.UNKNOWN: "bold magenta",
    Outcome.NOT_RUN: "magenta",
    Outcome.TOOL_FAILURE: "bold magenta",
}


def headline(run: CheckRun) -> str:
    return VERDICT.get(run.exit_code, f"exit {run.exit_code}")


def summary_line(run: CheckRun) -> str:
    counts = run.counts()
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    c = run.cache
    return (f"{len(run.rows)} rows: {', '.join(parts)}; cache: {c.hits} hits, {c.misses} misses,"
            f" {c.ignored} ignored; {run.seconds:.1f}s")


# -- terminal ----------------------------------------------------------------------------------


def print_check(console: Console, run: CheckRun) -> None:
    """The terminal summary: every row that is not OK, then one line of counts and the verdict."""
    bad = [r for r in run.rows if r.outcome is not Outcome.OK]
    if run.update_baseline:  # the rows that differ from the old baseline are the diff to review, not failures
        changed = [r for r in bad if r.outcome.regression and not isinstance(r.key.setting, Replay)]
        console.print(f"{len(changed)} rows differ from the old baseline {run.config.baseline}")
        bad = [r for r in bad if r not in changed]
    if bad:
        table = Table(pad_edge=False)
        for column in ("outcome", "variant", "geometry", "invariant", "op", "result", "baseline", "detail"):
            table.add_column(column, no_wrap=column != "detail", overflow="fold")
        for r in bad:
            table.add_row(f"[{STYLE[r.outcome]}]{r.outcome.value}[/]", r.variant, r.geometry, r.invariant, r.op,
                          r.verdict, r.expected or "-", _detail(r))
        console.print(table)
    console.print(summary_line(run))
    if run.baseline_written is not None:
        console.print(f"baseline written: {run.baseline_written}")
    style = "bold green" if run.exit_code == EXIT_OK else "bold red"
    console.print(f"[{style}]pcpu-verify check: {headline(run)}[/] (exit {run.exit_code})")


def _detail(r: Row) -> str:
    if r.source and isinstance(r.key.setting, Replay):
        return f"{r.source}: {r.detail}" if r.detail else r.source
    if r.trace is not None and r.outcome is Outcome.NEW_VIOLATION:
        trace = r.minimised or r.trace
        ops = "; ".join(" ".join([o["op"], *(f"{k}={v}" for k, v in o.items() if k != "op")]) for o in trace["ops"])
        return f"{len(trace['ops'])} ops: {ops}" if ops else r.detail
    return r.detail


# -- JUnit XML ---------------------------------------------------------------------------------------


def junit_xml(run: CheckRun) -> str:
    """One <testsuite> per variant x geometry (and for the traces and stateful machines), one <testcase> per row.

    A regression is a <failure>, UNKNOWN or a tool failure an <error>, a row
    the budget did not reach <skipped> -- never a pass.
    """
    groups: dict[str, list[Row]] = {}
    for r in run.rows:
        name = "regression traces" if isinstance(r.key.setting, Replay) else f"{r.variant} {r.geometry}"
        groups.setdefault(name, []).append(r)
    root = ET.Element("testsuites", name="pcpu-verify check")
    totals: Counter[str] = Counter()
    for name, rows in groups.items():
        counts = _junit_counts(rows)
        totals.update(counts)
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(rows)), failures=str(counts["failures"]),
                              errors=str(counts["errors"]), skipped=str(counts["skipped"]),
                              time=f"{sum(r.seconds for r in rows):.3f}")
        for r in rows:
            # "v1 page4096/setup" -> pcpu-verify.v1.page4096.setup
            classname = "pcpu-verify." + name.replace(" ", ".").replace("/", ".")
            case = ET.SubElement(suite, "testcase", classname=classname,
                                 name=_case_name(r), time=f"{r.seconds:.3f}")
            message = _message(r)
            if r.outcome.regression:
                ET.SubElement(case, "failure", message=message, type=r.outcome.value).text = _case_text(r)
            elif r.outcome in (Outcome.UNKNOWN, Outcome.TOOL_FAILURE):
                ET.SubElement(case, "error", message=message, type=r.outcome.value).text = _case_text(r)
            elif r.outcome is Outcome.NOT_RUN:
                ET.SubElement(case, "skipped", message=f"NOT RUN: {r.detail}")
            if r.cached:
                ET.SubElement(case, "system-out").text = "served from the cache"
    root.set("tests", str(len(run.rows)))
    for key in ("failures", "errors"):  # junit-10.xsd has no "skipped" on <testsuites>: each <testsuite> has it
        root.set(key, str(totals[key]))
    root.set("time", f"{run.seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_counts(rows: list[Row]) -> Counter[str]:
    c: Counter[str] = Counter()
    for r in rows:
        if r.outcome.regression:
            c["failures"] += 1
        elif r.outcome in (Outcome.UNKNOWN, Outcome.TOOL_FAILURE):
            c["errors"] += 1
        elif r.outcome is Outcome.NOT_RUN:
            c["skipped"] += 1
    return c


def _case_name(r: Row) -> str:
    if isinstance(r.key.setting, Replay):
        return f"replay {r.source} ({r.variant}: {r.invariant})"
    return f"{r.invariant} / {r.op}"


def _message(r: Row) -> str:
    base = f"{r.outcome.value}: {r.invariant} / {r.op} on {r.variant} {r.geometry} is {r.verdict}"
    return base + (f", the baseline says {r.expected}" if r.expected else ", not in the baseline")


def _case_text(r: Row) -> str:
    parts = [_message(r)]
    if r.detail:
        parts.append(r.detail)
    trace = r.minimised or r.trace
    if trace is not None and r.outcome is Outcome.NEW_VIOLATION:
        parts.append("trace: " + json.dumps(trace))
    parts += _layout_lines(r)
    return "\n".join(parts)


def _layout_lines(r: Row) -> list[str]:
    """A VIOLATED layout row's findings: which inputs break the property, and the counterexample's values."""
    found = r.layout or {}
    if not isinstance(r.key.setting, LayoutSetting) or r.verdict != "VIOLATED":
        return []
    out = []
    if found.get("breaks_when"):
        out.append(f"breaks when ({found.get('breaks_when_kind', '?')}, {found.get('breaks_when_verdict', '?')}):"
                   f" {found['breaks_when']}")
    if found.get("counterexample"):
        out.append("counterexample: " + json.dumps(found["counterexample"]))
    return out


# -- SARIF 2.1.0 ----------------------------------------------------------------------------------------


def _location(file: str, line: int, root: Path, message: str | None = None) -> dict[str, Any]:
    path = Path(file).resolve()
    try:
        artifact: dict[str, Any] = {"uri": path.relative_to(root).as_posix(), "uriBaseId": "SRCROOT"}
    except ValueError:
        artifact = {"uri": path.as_uri()}
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": line}}}
    if message:
        loc["message"] = {"text": message}
    return loc


def _function_location(variant: str, function: str, root: Path) -> dict[str, Any] | None:
    cls = VARIANTS.get(variant, PcpuAllocator)
    fn = getattr(cls, function, None)
    for module in FUNCTION_MODULES if fn is None else ():  # not a method: a function of the port's module
        fn = getattr(module, function, None)
        if fn is not None:
            break
    if fn is None:
        return None
    try:
        file = inspect.getsourcefile(fn)
        _, line = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    return _location(file or "", line, root, f"{fn.__qualname__} ({variant})") if file else None


def _overrides(variant: str, root: Path) -> list[dict[str, Any]]:
    """Every function the variant's classes define over ``PcpuAllocator``: where its patch differs."""
    cls = VARIANTS.get(variant)
    if cls is None:
        return []
    out = []
    for klass in cls.__mro__:
        if klass is PcpuAllocator or not issubclass(klass, PcpuAllocator):
            continue
        for name, fn in vars(klass).items():
            if inspect.isfunction(fn) and hasattr(PcpuAllocator, name):
                try:
                    file = inspect.getsourcefile(fn) or ""
                    _, line = inspect.getsourcelines(fn)
                except (OSError, TypeError):
                    continue
                out.append(_location(file, line, root, f"{klass.__name__}.{name} overrides the port"))
    return out


def _last_op(r: Row) -> str:
    """The operation a row's obligation, or the last step of its trace, exercises (a key of OP_FUNCTIONS)."""
    if r.kind == "proof":  # a suite's operation, or a layout row's "layout"
        return r.op
    trace = r.minimised or r.trace
    ops = trace.get("ops", []) if trace else []
    if ops:
        return str(ops[-1]["op"])
    return "init-first-chunk" if trace and trace.get("init", {}).get("kind") == "first_chunk" else "init"


SARIF_LEVEL = {
    Outcome.NEW_VIOLATION: "error",
    Outcome.VIOLATION_GONE: "error",
    Outcome.CHANGED: "error",
    Outcome.TOOL_FAILURE: "error",
    Outcome.UNKNOWN: "warning",
    Outcome.NOT_RUN: "note",
    Outcome.OK: "note",
}

BASELINE_STATE = {
    Outcome.NEW_VIOLATION: "new",
    Outcome.VIOLATION_GONE: "absent",
    Outcome.CHANGED: "updated",
    Outcome.OK: "unchanged",
}


def sarif_json(run: CheckRun) -> str:
    """Every row that is not OK, and every known violation (as a note), as SARIF 2.1.0 results."""
    root = run.config.root
    rows = [r for r in run.rows if r.outcome is not Outcome.OK or r.verdict in ("VIOLATED", "BROKEN")]
    rule_ids = sorted({r.invariant for r in rows})
    rules = []
    for rid in rule_ids:
        inv = REGISTRY.get(rid)
        prop = LAYOUT_PROPERTIES.get(rid)
        rule: dict[str, Any] = {"id": rid, "name": rid, "shortDescription": {"text": rid}}
        if inv is not None:
            rule["fullDescription"] = {"text": f"{inv.seed} ({inv.patch})"}
            rule["properties"] = {"kind": inv.kind}
        elif prop is not None:
            rule["fullDescription"] = {"text": f"{prop.statement} ({prop.source})"}
            rule["properties"] = {"kind": "layout"}
        rules.append(rule)
    results = []
    for r in rows:
        function = OP_FUNCTIONS.get(_last_op(r), "pcpu_alloc_area")
        primary = None
        if isinstance(r.key.setting, Replay) and r.source and not r.key.setting.known:
            primary = _location(str(root / r.source), 1, root, "the regression trace")
        if primary is None:
            primary = _function_location(r.variant, function, root) or _location(
                str(root / "pcpuverify" / "model" / "percpu.py"), 1, root)
        text = _message(r) + (f". {r.detail}" if r.detail else "")
        result: dict[str, Any] = {
            "ruleId": r.invariant,
            "ruleIndex": rule_ids.index(r.invariant),
            "level": SARIF_LEVEL[r.outcome] if r.outcome is not Outcome.OK else "note",
            "kind": "fail" if r.outcome is not Outcome.OK else "informational",
            "message": {"text": text},
            "locations": [primary],
            "partialFingerprints": {
                "pcpuVerifyRow/v1": hashlib.sha256(
                    f"{r.kind}|{r.variant}|{r.geometry}|{r.invariant}|{r.op}|{r.source}".encode()).hexdigest()
            },
            "properties": {"variant": r.variant, "geometry": r.geometry, "op": r.op, "result": r.verdict,
                           "expected": r.expected, "outcome": r.outcome.value, "function": function},
        }
        if r.outcome in BASELINE_STATE:
            result["baselineState"] = BASELINE_STATE[r.outcome]
        related = _overrides(r.variant, root)
        if related:
            result["relatedLocations"] = [{**loc, "id": i} for i, loc in enumerate(related)]
        trace = r.minimised or r.trace
        if trace is not None:
            result["properties"]["trace"] = trace
        if r.layout:
            result["properties"]["layout"] = r.layout
        results.append(result)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pcpu-verify", "version": __version__, "semanticVersion": __version__,
                                "rules": rules}},
            "originalUriBaseIds": {"SRCROOT": {"uri": root.as_uri() + "/"}},
            "invocations": [{"executionSuccessful": run.exit_code in (EXIT_OK, EXIT_VIOLATION),
                             "exitCode": run.exit_code}],
            "results": results,
        }],
    }
    return json.dumps(doc, indent=1) + "\n"


# -- Markdown ------------------------------------------------------------------------------------------------


def draw_trace(trace_json: dict[str, Any]) -> str:
    """The trace replayed on the reference, the chunk drawn after every step (as ``pcpu-verify replay``)."""
    trace = trace_from_json(trace_json)
    B = trace.geometry.block_bits
    try:
        replayed = replay(trace)
    except OpError as e:
        return f"(replay refused: {e})\n"
    lines = ["initial state", draw_state(replayed.initial_state, B).plain]
    for s in replayed.steps:
        ret = f" -> bit_off {s.result.bit_off}" if s.result.bit_off is not None else ""
        lines.append(f"step {s.index}: {s.result.op.describe()}{ret}")
        lines.append(draw_state(s.state, B).plain)
        lines += [f"  VIOLATED {v.describe()}" for v in s.violations]
    return "\n".join(lines).rstrip() + "\n"


def markdown(run: CheckRun) -> str:
    """A pull-request comment: the verdict, the counts, every row that is not OK, each new violation drawn."""
    out = [f"## pcpu-verify check: {headline(run)}", "", summary_line(run), ""]
    counts = run.counts()
    out += ["| outcome | rows |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in counts.items() if v] + [""]
    new = [r for r in run.rows if r.outcome is Outcome.NEW_VIOLATION]
    if new:
        out += ["### New violations", ""]
        for r in new:
            trace = r.minimised or r.trace
            out += [f"#### `{r.invariant}` / `{r.op}` on `{r.variant}` {r.geometry}", ""]
            function = OP_FUNCTIONS.get(_last_op(r))
            if function:
                out += [f"Exercises `{function}`."]
            if isinstance(r.key.setting, LayoutSetting):
                found = r.layout or {}
                page = r.key.setting.page_size
                where = f"Under the `{found.get('preconditions', '?')}` preconditions, PAGE_SIZE {page}, 64-bit values:"
                example = f"`{found['description']}`" if found.get("description") else r.detail or "(no counterexample)"
                out += ["", where, "", example, ""]
                if found.get("breaks_when"):
                    how = f"{found.get('breaks_when_kind', '?')}, {found.get('breaks_when_verdict', '?')}"
                    out += [f"Breaks when ({how}): {found['breaks_when']}", ""]
                if found.get("counterexample"):
                    out += ["<details><summary>counterexample</summary>", "", "```json",
                            json.dumps(found["counterexample"], indent=2), "```", "", "</details>", ""]
                continue
            if trace is None:
                out += [r.detail or "(no trace)", ""]
                continue
            label = "Minimised trace" if r.minimised else "Trace (not minimised)"
            out += [f"{label}: {len(trace.get('ops', []))} ops, geometry {json.dumps(trace.get('geometry'))}.", "",
                    "```text", draw_trace(trace).rstrip(), "```", "",
                    "<details><summary>trace file</summary>", "", "```json", json.dumps(trace, indent=2), "```", "",
                    "</details>", ""]
    sections = [
        (Outcome.VIOLATION_GONE, "Known violations that disappeared",
         "The baseline expects these; if the change fixes them, run `pcpu-verify check --update-baseline`."),
        (Outcome.CHANGED, "Other changes of verdict", ""),
        (Outcome.TOOL_FAILURE, "Tool failures (nothing is proved)", ""),
        (Outcome.UNKNOWN, "UNKNOWN (never a pass)", "Raise `rlimit` or narrow the matrix."),
        (Outcome.NOT_RUN, "Not run (budget exhausted; never a pass)", ""),
    ]
    for outcome, title, note in sections:
        rows = [r for r in run.rows if r.outcome is outcome]
        if not rows:
            continue
        out += [f"### {title}", ""] + ([note, ""] if note else [])
        out += ["| variant | geometry | invariant | op | result | baseline | detail |", "|---|---|---|---|---|---|---|"]
        out += [f"| {r.variant} | {r.geometry} | `{r.invariant}` | {r.op} | {r.verdict} | {r.expected or '-'} |"
                f" {_detail(r).replace('|', '/')} |" for r in rows]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
