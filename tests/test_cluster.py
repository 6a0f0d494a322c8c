"""``check --executor dask`` (issue 12, part 5): the check's items on Dask distributed, as a user runs it.

Each test runs ``pcpu-verify check`` as a subprocess.  The clusters are started by the tests: a
``LocalCluster`` in this process, or the ``dask scheduler`` and ``dask worker`` commands the README
gives for a real cluster.  The coordinator alone reads and writes the cache and the baseline, so a
cluster's results must be the local pool's, row for row, and what it caches must serve a local run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from installed import pcpu_verify_exe
from distributed import Client, LocalCluster

import pcpuverify

TESTS = Path(__file__).parent
PACKAGE = Path(pcpuverify.__file__).parent
HINT_OVERLAP = TESTS / "traces" / "v1_hint_overlap.json"
EMPTY_BASELINE = {"format": "pcpu-verify-baseline/1", "suites": {}}


def exe() -> str:
    return pcpu_verify_exe()


def write_config(tmp: Path, **overrides: Any) -> Path:
    """v1 on one block of 8 bits, depth 3: one invariant it keeps, one it breaks (so a minimisation runs too)."""
    keys: dict[str, Any] = {
        "variants": ["v1"], "geometries": ["1x8"], "depth": 3, "rlimit": 2_000_000_000, "seed": 0,
        "timeout": 900.0, "budget": 0, "jobs": 2, "cache-dir": "cache", "baseline": "baseline.json",
        "traces": ["traces"], "stateful-examples": 0, "layout": False,
    }
    keys.update(overrides)
    lines = [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    (tmp / "check.toml").write_text("\n".join(["[tool.pcpu-verify]", *lines]) + "\n")
    (tmp / "traces").mkdir(exist_ok=True)
    shutil.copy(HINT_OVERLAP, tmp / "traces" / HINT_OVERLAP.name)
    (tmp / "baseline.json").write_text(json.dumps(EMPTY_BASELINE))
    return tmp / "check.toml"


FILTERS = ("--invariant", "free-bits-count", "--invariant", "nr-empty-pop-pages-matches-bitmap")


def check(tmp: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 900) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], float]:
    """``pcpu-verify check --json ARGS`` in ``tmp``: the process, its JSON summary and its wall time."""
    started = time.perf_counter()
    result = subprocess.run([exe(), "check", "--config", str(tmp / "check.toml"), "--json", *args],
                            capture_output=True, text=True, cwd=tmp, timeout=timeout, env=env, check=False)
    seconds = time.perf_counter() - started
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    try:
        summary = json.loads(result.stdout)
    except json.JSONDecodeError:
        summary = {}
    return result, summary, seconds


def verdicts(summary: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every row as what it says (not how long it took, nor whether it came from the cache).

    A VIOLATED row's trace is whether it has one, not which: two processes may build the same query's terms
    in another order, and the solver then returns another counterexample of the same verdict (each one is
    replayed on the model before it counts).
    """
    return sorted((r["kind"], r["variant"], r["geometry"], r["invariant"], r["op"], r["result"], r["outcome"],
                   r.get("trace") is not None, r.get("minimised") is not None)
                  for r in summary["results"])


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pcpu-verify: error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes of one thread each, started here, as a cluster the check is pointed at."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


# -- the same verdicts as the local pool -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_cluster_gives_the_local_verdicts_and_feeds_the_same_cache(tmp_path: Path, cluster: LocalCluster) -> None:
    write_config(tmp_path, **{"stateful-examples": 5})
    local, local_summary, local_seconds = check(tmp_path, *FILTERS, "--no-cache")
    dask, dask_summary, dask_seconds = check(tmp_path, *FILTERS, "--executor", "dask",
                                             "--scheduler", cluster.scheduler_address)
    print(f"\nlocal pool {local_seconds:.1f} s, Dask cluster of two workers {dask_seconds:.1f} s"
          f" (ratio {dask_seconds / local_seconds:.2f})")
    assert local.returncode == dask.returncode == 1, (local.stderr[-2000:], dask.stderr[-2000:])  # new rows
    assert verdicts(dask_summary) == verdicts(local_summary), set(verdicts(dask_summary)) ^ set(verdicts(local_summary))
    kinds = {r["kind"] for r in dask_summary["results"]}
    assert kinds == {"trace", "proof", "stateful"}, kinds
    assert any(r["result"] == "VIOLATED" and r.get("minimised") for r in dask_summary["results"])
    assert set(dask_summary["items"].values()) == {"ran"} and dask_summary["cache"]["written"] >= 2

    # what the cluster's results wrote to the cache (through the coordinator) serves the local pool
    cached, cached_summary, _ = check(tmp_path, *FILTERS)
    assert set(cached_summary["items"].values()) == {"cached"}, cached_summary["items"]
    assert verdicts(cached_summary) == verdicts(local_summary) and cached.returncode == 1

    # a budget that cuts the suite short: the rows it streamed are the local ones, the rest NOT RUN, and the
    # workers that ran the check's tasks are restarted, so that nothing of it goes on running on the cluster
    cut, cut_summary, _ = check(tmp_path, *FILTERS, "--no-cache", "--budget", "3", "--executor", "dask",
                                "--scheduler", cluster.scheduler_address)
    assert cut_summary["budget_exhausted"] and any(r["result"] == "NOT RUN" for r in cut_summary["results"])
    full = {row[:5]: row for row in verdicts(local_summary)}
    reached = [row for row in verdicts(cut_summary) if row[5] != "NOT RUN"]
    # exit 1 when a proof or stateful row was reached: against the empty baseline each is a change, and 1 comes
    # before 3.  A trace row is not (a trace must reproduce whatever the baseline says).  On a loaded machine 3 s
    # can end before any row, or after the trace rows only (the slow tier beside other work did): exit 3
    changed = [row for row in reached if row[0] != "trace"]
    assert cut.returncode == (1 if changed else 3), (reached, cut.stderr[-3000:])
    assert all(full[row[:5]][:6] == row[:6] for row in reached), reached
    print(f"within the budget: {sum(row[0] == 'proof' for row in reached)} proof rows streamed,"
          f" items {cut_summary['items']}")
    with Client(cluster) as client:
        assert wait_until(lambda: not any(client.processing().values()), 30), client.processing()


@pytest.mark.slow
@pytest.mark.slow
def test_a_cluster_of_its_own_prints_what_the_local_pool_prints(tmp_path: Path) -> None:
    """Without --scheduler the workers are the check's children, their stderr its own: nothing new on it."""
    write_config(tmp_path, geometries=["1x4"], depth=1, **{"stateful-examples": 5})
    local, local_summary, _ = check(tmp_path, "--invariant", "free-bits-count", "--no-cache")
    dask, dask_summary, _ = check(tmp_path, "--invariant", "free-bits-count", "--no-cache", "--executor", "dask")
    assert verdicts(dask_summary) == verdicts(local_summary) and dask.returncode == local.returncode
    assert dask.stderr == local.stderr == "", dask.stderr[-3000:]  # --json into a pipe: no progress lines


@pytest.mark.slow
def test_a_suite_streams_its_rows_from_a_cluster_worker(cluster: LocalCluster) -> None:
    """Each row a suite finishes on a worker reaches the coordinator as it settles (what a budget keeps)."""
    from pcpuverify.check.executors import DaskExecutor
    from pcpuverify.check.workers import SuiteItem
    from pcpuverify.model.geometry import Geometry
    from pcpuverify.proofs.suite import SuiteOptions

    item = SuiteItem("v1", Geometry.parse("1x4"), SuiteOptions(depth=1), frozenset({"free-bits-count"}), None,
                     key="streamed", estimate=1.0)
    executor = DaskExecutor(cluster.scheduler_address, workers=2, plugins=())
    try:
        pool = executor.pool(1)
        future = pool.submit(item)
        results = future.result(timeout=300)
        assert results and wait_until(lambda: len(pool.streamed(future)) == len(results), 30)
        assert pool.started(future)
        assert [(r.invariant, r.op, r.verdict) for r in pool.streamed(future)] == \
            [(r.invariant, r.op, r.verdict) for r in results]
        pool.close()
    finally:
        executor.close()


PLUGIN = '''"""A plug-in variant: v1 under another name, registered the way a patch under review is."""
from pcpuverify.check import register_variant
from pcpuverify.symbolic.subjects import subject

V1 = subject("v1")


class PluginModel(V1.model):
    variant = "v1-plugin"


class PluginEncoding(V1.encoding):
    variant = "v1-plugin"


register_variant("v1-plugin", PluginModel, PluginEncoding)
'''


@pytest.mark.slow
def test_a_plugin_runs_on_the_workers_and_an_edited_one_is_refused(tmp_path: Path, cluster: LocalCluster) -> None:
    """A worker loads a plug-in once: edited afterwards, the worker would run the old one under the new key."""
    write_config(tmp_path, geometries=["1x4"], depth=1)
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    args = ("--variant-module", str(plugin), "--variant", "v1-plugin", "--invariant", "free-bits-count",
            "--executor", "dask", "--scheduler", cluster.scheduler_address)
    first, summary, _ = check(tmp_path, *args)
    assert first.returncode == 1 and summary["items"] == {"v1-plugin 1x4": "ran"}, first.stderr[-3000:]
    assert {r["result"] for r in summary["results"] if r["kind"] == "proof"} == {"PROVED"}
    plugin.write_text(PLUGIN + "# the patch, revised\n")
    second, _, _ = check(tmp_path, *args, "--quiet")
    assert_one_error_line(second, "differs from this machine", f"plug-in {plugin}")


# -- bad usage: one line, exit 2 --------------------------------------------------------------------------------


def test_without_dask_the_executor_is_one_line(tmp_path: Path) -> None:
    """As if the `cluster` extra were not installed: a `distributed` that cannot be imported."""
    shadow = tmp_path / "shadow" / "distributed"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    write_config(tmp_path)
    path = os.pathsep.join(p for p in (str(shadow.parent), os.environ.get("PYTHONPATH")) if p)
    result, _, _ = check(tmp_path, "--executor", "dask", "--quiet", env={**os.environ, "PYTHONPATH": path},
                         timeout=120)
    assert_one_error_line(result, "--executor dask", "pip install 'pcpu-verify[cluster]'")
    assert not (tmp_path / "cache").exists()


def test_a_scheduler_needs_the_dask_executor(tmp_path: Path) -> None:
    write_config(tmp_path)
    result, _, _ = check(tmp_path, "--scheduler", "tcp://127.0.0.1:8786", "--quiet", timeout=120)
    assert_one_error_line(result, "--scheduler", "--executor dask")


def test_the_scheduler_variable_leaves_a_local_check_local(tmp_path: Path) -> None:
    """$PCPU_VERIFY_SCHEDULER serves --executor dask only: a local check with it set gets past the executor."""
    write_config(tmp_path)
    result, _, _ = check(tmp_path, "--variant", "no-such-variant", "--quiet", timeout=120,
                         env={**os.environ, "PCPU_VERIFY_SCHEDULER": "tcp://127.0.0.1:8786"})
    assert_one_error_line(result, "no-such-variant")  # the next check in line, not the scheduler's


def test_a_worker_with_several_threads_is_refused(tmp_path: Path) -> None:
    """One item per worker process: Z3's context and Hypothesis's state are the process's."""
    write_config(tmp_path)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0") as c:
        result, _, _ = check(tmp_path, *FILTERS, "--executor", "dask", "--scheduler", c.scheduler_address,
                             "--quiet", timeout=120)
    assert_one_error_line(result, "runs 2 threads", "--nthreads 1")
    assert not list((tmp_path / "cache").glob("*.json"))


@pytest.mark.slow
def test_a_worker_with_other_sources_is_refused(tmp_path: Path) -> None:
    """A real cluster, started as the README says, whose worker runs an edited copy of the package."""
    copy = tmp_path / "other" / "pcpuverify"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "proofs" / "suite.py").open("a") as f:
        f.write("\nEDITED = 1\n")
    write_config(tmp_path)
    scheduler_file = tmp_path / "scheduler.json"
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                                  start_new_session=True)]
    try:
        assert wait_until(scheduler_file.exists, 60), "the scheduler did not start"
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
             "--nthreads", "1", "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(copy.parent)}, cwd=tmp_path, start_new_session=True))
        address = json.loads(scheduler_file.read_text())["address"]
        result, _, _ = check(tmp_path, *FILTERS, "--executor", "dask", "--quiet",
                             env={**os.environ, "PCPU_VERIFY_SCHEDULER": address}, timeout=180)
    finally:
        for p in processes:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=60)
    assert_one_error_line(result, "differs from this machine", "pcpu-verify sources")
    assert not list((tmp_path / "cache").glob("*.json"))


# -- SIGTERM and Ctrl-C: exit 143 or 130, and no worker left ------------------------------------------------------


def session_members(session: int) -> list[str]:
    """The live processes of ``session``: their command lines."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(cmdline)
    return members


def catches_sigint(pid: int) -> bool:
    """``pid`` has a SIGINT handler again: our LocalCluster is up (it ignores SIGINT while it starts)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


def _sigint_default() -> None:
    """SIGINT as a terminal leaves it, whatever this test process inherited: an ignored SIGINT is inherited
    through exec, Python then installs no handler, and the check would neither show it is up nor take Ctrl-C.
    The suspected cause, not a proven one, of the fixture's errors in this session's fresh-clone runs (the
    check ran to its end unsignalled, 3 of 3 times, in the full suite only)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def running_dask_check(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A ``check --executor dask`` in its own session, its LocalCluster's two workers inside the suite."""
    write_config(tmp_path, geometries=["2x4"])  # a suite of 26 s or more: still running 2 s after the cluster is up
    proc = subprocess.Popen([exe(), "check", "--config", tmp_path / "check.toml", "--executor", "dask",
                             "--junit", "r/out.xml"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_sigint_default)
    try:
        started = wait_until(lambda: proc.poll() is not None
                             or sum("spawn_main" in c for c in session_members(proc.pid)) >= 2
                             and catches_sigint(proc.pid), 120)
        assert started and proc.poll() is None, (proc.returncode, proc.communicate(timeout=60))
        time.sleep(2)  # a worker is inside the suite by now
        yield proc, tmp_path
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever a failure left behind
        except ProcessLookupError:
            pass
        proc.communicate(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize(("to_the_group", "signum", "code", "word"), [
    (False, signal.SIGTERM, 143, "terminated"),  # as a CI runner or `kill` sends it
    (True, signal.SIGINT, 130, "interrupted"),  # as a terminal sends Ctrl-C: the workers get it too
])
def test_a_signal_ends_the_check_and_its_cluster(running_dask_check: tuple[subprocess.Popen[str], Path],
                                                 to_the_group: bool, signum: int, code: int, word: str) -> None:
    proc, tmp = running_dask_check
    sent = time.monotonic()
    if to_the_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-3000:]
    assert wait_until(lambda: not session_members(proc.pid), 15), session_members(proc.pid)
    print(f"\n{signal.Signals(signum).name}: the check and its workers were gone {time.monotonic() - sent:.1f} s later")
    assert word in err and "Traceback" not in err and "Error" not in err, err[-3000:]
    assert not (tmp / "r").exists() and not list((tmp / "cache").glob("*.json"))


@pytest.mark.slow
def test_a_killed_check_leaves_no_worker(running_dask_check: tuple[subprocess.Popen[str], Path]) -> None:
    proc, _ = running_dask_check
    proc.kill()
    proc.wait(timeout=60)
    assert wait_until(lambda: not session_members(proc.pid), 15), session_members(proc.pid)
