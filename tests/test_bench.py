"""The benchmark scripts run, each at its smallest setting, as a user runs them: ``python bench/X.py`` in a child.

They are where the performance figures of the README come from, so a script that no longer starts is a
figure nobody can reproduce (``bench_proofs.py --blocks`` had been broken that way by a signature change).
These tests check that each prints its table with the rows it was asked for; they time nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_bench(script: str, *args: str, timeout: float = 300) -> str:
    """The script's standard output; a non-zero exit fails the test with its standard error."""
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_block_contract_table_has_every_contract_proved_at_8_bits() -> None:
    from pcpuverify.proofs.blocks.contracts import CONTRACTS

    out = run_bench("bench_proofs.py", "--blocks", "8", "--settings", "bitwuzla:1", "--budget", "60")
    assert "block8 instantiated: " in out and f"for {len(CONTRACTS)} contracts" in out
    assert re.search(r"^block8 instantiated: the longest-run lemma proved, 10 queries in \d+\.\ds$", out, re.M), out
    rows = [line for line in out.splitlines() if "PROVED" in line and "│" in line]
    assert len(rows) == len(CONTRACTS), out


def test_block_contract_table_compares_the_instantiated_and_the_full_queries() -> None:
    """``--queries instantiated,full`` puts both ways and their ratio side by side; ``--op`` keeps one role."""
    out = run_bench("bench_proofs.py", "--blocks", "8", "--settings", "bitwuzla:1", "--budget", "60",
                    "--queries", "instantiated,full", "--op", "pcpu_block_update_hint_free:end")
    rows = [line for line in out.splitlines() if "│" in line and "pcpu_block_update_hint_free:end" in line]
    assert len(rows) == 2, out  # block-hints-match-scan and free-never-lowers-hints: that role only
    for row in rows:
        assert row.count("PROVED") == 2 and re.search(r"│ +x\d+\.\d\d │$", row.rstrip()), row
    for mode in ("instantiated", "full"):  # each way's child asked the block invariant its own way
        line = next(x for x in out.splitlines() if x.startswith(f"block8 {mode} block-hints-match-scan /"))
        assert f"(bitwuzla; {mode})" in line, line


def test_block_contract_table_of_a_scan_hint_release_has_its_own_rows() -> None:
    """``--variant mainline-fixed``: 5.2's block rows (one per invariant, and for the free inside one block the
    freed run's facts the composed rows rest on), in both ways of asking, each child asking its own way."""
    from pcpuverify.proofs.blocks.release_contracts import release_label_rows

    op = "pcpu_block_update_hint_free:same"
    owed = [name for name, row_op in release_label_rows() if row_op == op]
    out = run_bench("bench_proofs.py", "--variant", "mainline-fixed", "--blocks", "8", "--settings", "bitwuzla:1",
                    "--budget", "60", "--queries", "instantiated,full", "--op", op)
    for mode in ("instantiated", "full"):
        assert f"block8 {mode}: " in out and f"for {len(owed)} contracts" in out
        line = next(x for x in out.splitlines() if x.startswith(f"block8 {mode} block-contig-hint-exact /"))
        assert f"(bitwuzla; {mode})" in line, line
    rows = [line for line in out.splitlines() if "│" in line and op in line]
    assert len(rows) == len(owed) == 12, out
    for row in rows:
        assert row.count("PROVED") == 2 and re.search(r"│ +x\d+\.\d\d │$", row.rstrip()), row
    plain = run_bench("bench_proofs.py", "--variant", "mainline-fixed", "--blocks", "8", "--settings", "bitwuzla:1",
                      "--budget", "60", "--op", "pcpu_block_update_scan")
    assert "block8 instantiated: " in plain and "block8 full" not in plain  # the way prove asks, alone


def test_block_contract_table_refuses_an_unknown_way_of_asking() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "bench_proofs.py"), "--blocks", "8", "--queries", "lazy"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--queries takes instantiated and full" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_suite_table_compares_two_settings_and_their_verdicts() -> None:
    out = run_bench("bench_proofs.py", "--settings", "z3:1,bitwuzla:1", "--budget", "200", "1x8")
    assert "1x8 z3:1: 89 obligations" in out and "1x8 bitwuzla:1: 89 obligations" in out, out
    assert "DIFFER" not in out and "PROVED:89" in out, out
    assert "largest geometry whose whole suite finished within 200s: 1x8 (8 bits)" in out, out


def test_reference_rates_are_printed_per_geometry() -> None:
    out = run_bench("bench_reference.py", "--ops", "200", "--budget", "0.5", "--geometry", "1x8",
                    "--geometry", "2x8", "--variant", "v1")
    for geometry, bits in (("1x8", 8), ("2x8", 16)):
        assert re.search(rf"{geometry}\s+│\s+{bits} │ v1\s+│[\s\d,]+│[\s\d,]+│ +x[\d.]+ │ +\d+/200 │", out), out


def test_explore_prints_its_reachable_states() -> None:
    out = run_bench("bench_explore.py", "--depth", "2", "--variant", "v1", "1x4")
    # v1's out-of-bounds bitmap access on the first allocation (the seed review's first finding) is one op long
    assert "shortest violation per invariant" in out and "bitmap-access-in-bounds" in out, out
