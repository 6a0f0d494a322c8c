"""The ``pcpu-verify`` command line: thin wrappers that load input, run the layers, and print through one path."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

import click
from rich.console import Console

from pcpuverify.draw import draw_state
from pcpuverify.invariants.base import Violation
from pcpuverify.invariants.check import replay as replay_trace
from pcpuverify.model.first_chunk import LayoutError
from pcpuverify.model.geometry import GeometryError
from pcpuverify.model.ops import op_to_json
from pcpuverify.model.reference import OpError, Reference
from pcpuverify.model.trace import TraceError, load_trace
from pcpuverify.model.variants import UnknownVariant

EXIT_OK = 0
EXIT_VIOLATION = 1  # a claim of the input did not hold (e.g. a trace's "violates")
EXIT_USAGE = 2  # bad usage or input

USER_ERRORS = (TraceError, OpError, LayoutError, GeometryError, UnknownVariant)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn bad input into one line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as e:
            click.echo(f"pcpu-verify: error: {e}", err=True)
            sys.exit(EXIT_USAGE)

    return cast(F, wrapper)


@click.group()
@click.version_option(package_name="pcpu-verify")
def main() -> None:
    """Prove or refute the invariants of the percpu bitmap allocator (mm/percpu.c, July 2017 series)."""


def _violation_json(v: Violation) -> dict[str, str]:
    return {"invariant": v.invariant, "chunk": v.chunk, "field": v.field, "message": v.message}


def _highlight(violations: tuple[Violation, ...] | list[Violation]) -> dict[str, set[str]]:
    hot: dict[str, set[str]] = {}
    for v in violations:
        hot.setdefault(v.chunk, set()).add(v.field)
    return hot


@main.command()
@click.argument("trace_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the state after every step as JSON.")
@user_errors
def replay(trace_file: str, as_json: bool) -> None:
    """Replay TRACE_FILE on the reference and show the state after every step."""
    trace = load_trace(trace_file)
    initial_state = Reference(trace.variant, trace.geometry, trace.init).dump()
    initial, steps = replay_trace(trace)
    found = {v.invariant for v in initial} | {v.invariant for s in steps for v in s.violations}

    if as_json:
        click.echo(
            json.dumps(
                {
                    "trace": trace.to_json(),
                    "initial": {"state": initial_state, "violations": [_violation_json(v) for v in initial]},
                    "steps": [
                        {
                            "index": s.index,
                            "op": op_to_json(s.result.op),
                            "bit_off": s.result.bit_off,
                            "state": s.state,
                            "violations": [_violation_json(v) for v in s.violations],
                        }
                        for s in steps
                    ],
                },
                indent=2,
            )
        )
    else:
        console = Console(highlight=False, soft_wrap=True)
        B = trace.geometry.block_bits
        console.print(f"[bold]{trace_file}[/]: variant {trace.variant}, {len(trace.ops)} ops")
        console.print("initial state")
        console.print(draw_state(initial_state, B, _highlight(initial)))
        for s in steps:
            ret = ""
            if s.result.bit_off is not None:
                ret = f" -> bit_off {s.result.bit_off}"
            elif op_to_json(s.result.op)["op"] == "alloc":
                ret = " -> failed"
            console.print(f"[bold]step {s.index}[/]: {s.result.op.describe()}{ret}")
            console.print(draw_state(s.state, B, _highlight(s.violations)))
            for v in s.violations:
                console.print(f"  [bold red]VIOLATED[/] {v.describe()}")
    if trace.violates is not None and trace.violates not in found:
        click.echo(f"pcpu-verify: trace claims to violate {trace.violates!r} but the replay does not", err=True)
        sys.exit(EXIT_VIOLATION)
