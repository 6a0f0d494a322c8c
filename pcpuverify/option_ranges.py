"""The ranges of the numeric options that ``prove`` and ``check`` share; check/config.py holds the config to them.

A module of its own so that the command line can define ``prove`` without importing ``check`` (cli.py loads
``check`` only when it is the command run).
"""

from __future__ import annotations

import click

from pcpuverify.proofs.solver import MAX_RLIMIT, MAX_SEED, MAX_TIMEOUT, MIN_TIMEOUT
from pcpuverify.proofs.suite import MAX_DEPTH

TIMEOUT = click.FloatRange(MIN_TIMEOUT, MAX_TIMEOUT)
RLIMIT = click.IntRange(1, MAX_RLIMIT)
SEED = click.IntRange(0, MAX_SEED)
DEPTH = click.IntRange(1, MAX_DEPTH)
