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
by every property).  They run in an executor (``executors.py``): a process
pool on this machine, or Dask distributed (``--executor dask``); each suite
worker streams its rows back as they finish, so a suite cut off by the
budget still reports what it reached, and the rest as NOT RUN -- never as
passed (a layout suite reports nothing until it is done).  Only this
process reads and writes the cache and the baseline.

Results are cached on disk by a hash of everything they depend on (see
``suite_key`` and ``layout_key``); a cache entry is only used when it parses,
carries its own key, holds no UNKNOWN and every row its item owes, else it
is ignored and recomputed.

Every row is keyed by an ``Obligation(subject, setting, invariant, op)``
(check/obligation.py), its setting a typed value: a geometry, a layout
precondition set, the stateful run, a replay.  The strings the reports and
the baseline publish for them are made there, and read back there only.

Nothing here prints: the CLI (check_cli.py) and reports.py turn a
``CheckRun`` into text.
"""


from __future__ import annotations

from pcpuverify.check.baseline import load_baseline
from pcpuverify.check.cache import Cache
from pcpuverify.check.config import Config, find_config, load_config, register_variant
from pcpuverify.check.keys import PRESENTATION_MODULES, source_digest, suite_key
from pcpuverify.check.matrix import suite_rows
from pcpuverify.check.obligation import (
    LAYOUT_OP,
    FirstChunkStart,
    GeometrySetting,
    LayoutSetting,
    Obligation,
    Replay,
    Setting,
    SourceSetting,
    StatefulRun,
    obligation_of,
)
from pcpuverify.check.outcomes import (
    OP_FUNCTIONS,
    USER_ERRORS,
    CheckError,
    Outcome,
    Row,
)
from pcpuverify.check.run import CheckRun, Progress, run_check
from pcpuverify.proofs.termination import Terminated

__all__ = [
    "Cache",
    "CheckError",
    "CheckRun",
    "Config",
    "FirstChunkStart",
    "GeometrySetting",
    "LAYOUT_OP",
    "LayoutSetting",
    "OP_FUNCTIONS",
    "Obligation",
    "Outcome",
    "PRESENTATION_MODULES",
    "Progress",
    "Replay",
    "Row",
    "Setting",
    "SourceSetting",
    "StatefulRun",
    "Terminated",
    "USER_ERRORS",
    "find_config",
    "load_baseline",
    "load_config",
    "obligation_of",
    "register_variant",
    "run_check",
    "source_digest",
    "suite_key",
    "suite_rows",
]
