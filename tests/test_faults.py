"""Issue 13, "Hard to break, plain to read": one test per fault a new user found.

Each test drives the tool the way the fault was found (mostly a subprocess
of ``pcpu-verify`` on the smallest geometry), and failed before its fix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from installed import pcpu_verify_exe

import pcpuverify

PACKAGE = Path(pcpuverify.__file__).parent
TESTS = Path(__file__).parent
HINT_OVERLAP = TESTS / "traces" / "v1_hint_overlap.json"


def run_python(code: str, cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter in ``cwd`` (first on its sys.path); its stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            cwd=cwd, timeout=timeout, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# -- fault 1: the cache key covers every source a result depends on ----------------------------------------


@pytest.mark.slow
def test_cache_key_changes_with_every_source_a_result_depends_on(tmp_path: Path) -> None:
    """Append a line to each module of a copy of the package, one at a time: the suite key must change.

    Only the modules that present results (the command line, the reports,
    the drawings) may leave it unchanged, and nothing else imports them.
    """
    copy = tmp_path / "pcpuverify"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    out = run_python(f"""
        import json, pathlib, pcpuverify
        from pcpuverify.check import source_digest
        package = pathlib.Path(pcpuverify.__file__).parent
        assert package == pathlib.Path({str(copy)!r}), package  # the copy, not the installed tree
        before = source_digest("v1")
        unchanged = []
        for path in sorted(package.rglob("*.py")):
            text = path.read_text()
            path.write_text(text + "\\nEDITED = 1\\n")
            if source_digest("v1") == before:
                unchanged.append(path.relative_to(package).as_posix())
            path.write_text(text)
        assert source_digest("v1") == before
        print(json.dumps(unchanged))
    """, tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    unchanged = set(json.loads(out))
    presentation = {"cli.py", "check_cli.py", "report.py", "reports.py", "draw.py"}
    assert unchanged <= presentation, f"editing these leaves the cache key unchanged: {sorted(unchanged - presentation)}"


def test_no_result_depends_on_a_presentation_module() -> None:
    """What the cache key leaves out (the presenters) must be imported by no module it hashes."""
    from pcpuverify.check import PRESENTATION_MODULES

    presenters = {"pcpuverify." + m.removesuffix(".py") for m in PRESENTATION_MODULES}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() in PRESENTATION_MODULES:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.name} imports {p}" for p in presenters if f"{p} import" in text or f"import {p}" in text]
    assert not offenders


# -- fault 2: a huge nr_pages is refused before anything is built --------------------------------------------

MEMORY_LIMIT = 1 << 30  # bytes of address space for the subprocess: a 1e9-page list needs 8 GiB


def exe() -> str:
    return pcpu_verify_exe()


def pcpu_verify(*args: str | Path, cwd: Path | None = None, memory_limit: int | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``pcpu-verify ARGS`` as a user runs it (this tree's package: PYTHONPATH passes through)."""
    def limit() -> None:
        if memory_limit is not None:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run([exe(), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, preexec_fn=limit, check=False)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pcpu-verify: error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def chunk_trace(**geometry: Any) -> dict[str, Any]:
    return {"format": "pcpu-verify-trace/1", "variant": "v1", "geometry": geometry, "init": {"kind": "chunk"},
            "ops": [{"op": "alloc", "bits": 1}]}


@pytest.mark.parametrize("geometry", [
    {"block_bits": 8, "nr_pages": 1_000_000_000, "populated": [0]},
    {"block_bits": 8, "nr_pages": 1_000_000_000},
], ids=["populated-given", "populated-default"])
def test_huge_nr_pages_is_refused_in_bounded_memory(tmp_path: Path, geometry: dict[str, Any]) -> None:
    trace = tmp_path / "huge.json"
    trace.write_text(json.dumps(chunk_trace(**geometry)))
    result = pcpu_verify("replay", trace, memory_limit=MEMORY_LIMIT, timeout=60)
    assert_one_error_line(result, "nr_pages", "1000000000")


def test_huge_geometry_on_the_command_line_is_refused_in_bounded_memory() -> None:
    result = pcpu_verify("prove", "--geometry", "1000000000x8", "--no-layout", memory_limit=MEMORY_LIMIT, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "nr_pages" in result.stderr and "Traceback" not in result.stderr


# -- fault 3: every geometry Geometry accepts is proved or refused up front --------------------------------


@pytest.mark.parametrize("spec", ["8x1024", "16x1024", "64x1024"])
def test_prove_refuses_geometries_the_encoding_cannot_hold(spec: str) -> None:
    result = pcpu_verify("prove", "--geometry", spec, "--no-layout", "--variant", "v1", timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr and spec in result.stderr and "1024 bits" in result.stderr


def write_check_config(tmp: Path, **overrides: Any) -> Path:
    """The smallest check: v1 on one block of 4 bits, depth 1, no layout proofs, no stateful machines."""
    keys: dict[str, Any] = {
        "variants": ["v1"], "geometries": ["1x4"], "depth": 1, "rlimit": 2_000_000_000, "seed": 0,
        "timeout": 900.0, "budget": 0, "jobs": 1, "cache-dir": "cache", "baseline": "baseline.json",
        "traces": ["traces"], "stateful-examples": 0,
        "layout": False,
    }
    keys.update(overrides)
    (tmp / "check.toml").write_text("[tool.pcpu-verify]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
    (tmp / "traces").mkdir(exist_ok=True)
    shutil.copy(HINT_OVERLAP, tmp / "traces" / HINT_OVERLAP.name)
    return tmp / "check.toml"


def test_check_refuses_a_config_geometry_the_encoding_cannot_hold(tmp_path: Path) -> None:
    write_check_config(tmp_path, geometries=["1x8", "16x1024"])
    result = pcpu_verify("check", "--config", tmp_path / "check.toml", "--update-baseline", cwd=tmp_path, timeout=60)
    assert_one_error_line(result, "16x1024", "geometries[1]")
    assert not (tmp_path / "cache").exists()


def test_the_largest_encodable_geometry_is_accepted() -> None:
    """The bound refuses only what it must: 1024 bits in any shape Geometry allows passes the check."""
    from pcpuverify.model.geometry import Geometry
    from pcpuverify.symbolic.bv import MAX_ENCODED_BITS, check_encodable

    for spec in ("1x1024", "4x256", "64x16"):
        geometry = Geometry.parse(spec)
        assert geometry.nr_bits == MAX_ENCODED_BITS
        check_encodable(geometry)


# -- fault 9: a usage error is one line naming the option, with --help for the rest ------------------------


@pytest.mark.parametrize(("args", "named"), [
    (["prove", "--depth", "abc"], "--depth"),
    (["prove", "--bogus"], "--bogus"),
    (["prove", "--variant", "nope"], "--variant"),
    (["prove", "--geometry", "2y8"], "--geometry"),
    (["replay"], "TRACE_FILE"),
    (["check", "--jobs", "x"], "--jobs"),
    (["minimize", "a", "b"], "b"),
    (["no-such-command"], "no-such-command"),
])
def test_usage_error_is_one_line(args: list[str], named: str) -> None:
    result = pcpu_verify(*args, timeout=60)
    assert_one_error_line(result, named, "--help")
    assert not result.stdout


# -- fault 8: a reader that leaves early is not "did not reproduce" -----------------------------------------


def test_broken_pipe_exits_quietly_as_sigpipe() -> None:
    """``pcpu-verify replay T | head -1``: here the reader is gone before the first line is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([exe(), "replay", HINT_OVERLAP], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


# -- fault 7: nonsense options and unknown trace keys are refused -----------------------------------------


@pytest.mark.parametrize(("args", "named"), [
    (["prove", "--rlimit", "-1"], "--rlimit"),
    (["prove", "--rlimit", str(2**32)], "--rlimit"),  # Z3 wraps it to 0: no limit at all
    (["prove", "--timeout", "-5"], "--timeout"),
    (["prove", "--timeout", "0.0001"], "--timeout"),  # 0 ms: no timeout at all
    (["prove", "--depth", "100000"], "--depth"),
    (["prove", "--seed", "-1"], "--seed"),
    (["check", "--depth", "100000"], "--depth"),
    (["check", "--rlimit", "-1"], "--rlimit"),
    (["check", "--timeout", "-5"], "--timeout"),
    (["check", "--jobs", "-1"], "--jobs"),
])
def test_nonsense_option_is_refused(tmp_path: Path, args: list[str], named: str) -> None:
    write_check_config(tmp_path)
    if args[0] == "check":
        args = [*args, "--config", str(tmp_path / "check.toml")]
    result = pcpu_verify(*args, "--no-layout", cwd=tmp_path, timeout=60)
    assert_one_error_line(result, named)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("args", [["diff", "--variant", "mainline"], ["explore"]])
def test_a_negative_seed_of_the_c_searches_is_refused(tmp_path: Path, args: list[str]) -> None:
    """Python's ``random`` seeds with ``abs()`` of an int: ``--seed -1`` ran seed 1's traces while the report
    said -1."""
    assert_one_error_line(pcpu_verify(*args, "--source", tmp_path, "--seed", "-1"), "--seed", "-1")


def test_nonsense_config_value_is_refused(tmp_path: Path) -> None:
    write_check_config(tmp_path, depth=100000)
    assert_one_error_line(pcpu_verify("check", "--config", tmp_path / "check.toml", cwd=tmp_path, timeout=60),
                          "'depth'", "100000")


@pytest.mark.parametrize(("where", "key"), [(None, "violate"), ("geometry", "populate"), ("init", "size")])
def test_unknown_trace_key_is_refused_like_an_unknown_op_key(tmp_path: Path, where: str | None, key: str) -> None:
    data = json.loads(HINT_OVERLAP.read_text())
    (data if where is None else data[where])[key] = 1
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(data))
    assert_one_error_line(pcpu_verify("replay", trace, timeout=60), "unknown key", repr(key))


# -- fault 4: a read-only cache is a warning, and a crash is never exit 1 ---------------------------------


def without_dac_override() -> None:
    """In the child, before exec: root loses the right to write where the mode bits forbid it (non-root has none)."""
    if os.geteuid() == 0:
        import ctypes

        pr_capbset_drop, cap_dac_override = 24, 1  # <linux/prctl.h>, <linux/capability.h>
        if ctypes.CDLL(None, use_errno=True).prctl(pr_capbset_drop, cap_dac_override, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")


@pytest.mark.slow
def test_read_only_cache_warns_once_and_runs(tmp_path: Path) -> None:
    write_check_config(tmp_path)
    warm = pcpu_verify("check", "--config", tmp_path / "check.toml", "--update-baseline", cwd=tmp_path)
    assert warm.returncode == 0, warm.stderr[-3000:]
    cache = tmp_path / "cache"
    for path in [*cache.iterdir(), cache]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        probe = subprocess.run([sys.executable, "-c", f"open({str(cache / 'probe')!r}, 'w')"], capture_output=True,
                               preexec_fn=without_dac_override, check=False)
        assert probe.returncode != 0, "could not make a read-only directory for this test"
        result = subprocess.run([exe(), "check", "--config", tmp_path / "check.toml", "--json"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300, preexec_fn=without_dac_override,
                                check=False)
    finally:
        cache.chmod(0o755)
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("pcpu-verify: warning: cannot write to the cache"), warnings
    summary = json.loads(result.stdout)
    assert set(summary["items"].values()) == {"cached"} and summary["cache"]["written"] == 0


def test_a_crash_is_a_tool_failure_not_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from pcpuverify import cli

    def crash(path: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "load_trace", crash)
    result = CliRunner().invoke(cli.main, ["replay", str(HINT_OVERLAP)])
    assert result.exit_code == cli.EXIT_TOOL_FAILURE, result.output
    assert "RuntimeError: a bug" in result.stderr and "internal error" in result.stderr


# -- fault 5: SIGTERM is handled as Ctrl-C, and no process outlives the check --------------------------------


def session_members(session: int) -> list[str]:
    """The live processes of ``session`` (zombies are gone but for their exit status): their command lines."""
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


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return bool(condition())


@pytest.fixture
def running_check(tmp_path: Path) -> Any:
    """A ``check`` in its own session, once its worker and the resource tracker run; all of it killed after."""
    write_check_config(tmp_path, geometries=["1x8"], depth=3)
    (tmp_path / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
    proc = subprocess.Popen([exe(), "check", "--config", tmp_path / "check.toml", "--junit", "r/out.xml"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        # the suite goes to the pool right after the regression traces: waiting for that line, not for a fixed
        # time, keeps a fast machine from finishing (and rightly caching) the suite before the signal
        assert proc.stderr is not None
        assert any("regression traces: done" in line for line in proc.stderr), proc.communicate(timeout=60)
        started = wait_until(lambda: sum("multiprocessing" in c for c in session_members(proc.pid)) >= 2, 60)
        assert started, session_members(proc.pid)
        yield proc, tmp_path
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the session's process group: whatever a failure left behind
        except ProcessLookupError:
            pass
        proc.communicate(timeout=60)


def test_sigterm_is_handled_as_ctrl_c(running_check: Any) -> None:
    proc, tmp = running_check
    proc.send_signal(signal.SIGTERM)  # to the parent only, as a CI runner or `kill` sends it
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    assert "terminated" in err and "Traceback" not in err
    assert not (tmp / "r").exists() and not list((tmp / "cache").glob("*.json"))
    assert wait_until(lambda: not session_members(proc.pid), 15), session_members(proc.pid)


def test_workers_and_resource_tracker_leave_with_a_killed_parent(running_check: Any) -> None:
    proc, _ = running_check
    proc.kill()
    proc.wait(timeout=60)
    assert wait_until(lambda: not session_members(proc.pid), 15), session_members(proc.pid)


# -- fault 6: a second check on the same tree waits for the first's result ----------------------------------


@pytest.mark.slow
def test_second_concurrent_check_reads_the_first_ones_result(tmp_path: Path) -> None:
    write_check_config(tmp_path)
    (tmp_path / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
    command = [exe(), "check", "--config", tmp_path / "check.toml"]
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(subprocess.Popen([*command, "--json"], cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True))
        computing = wait_until(lambda: any("spawn_main" in c for c in session_members(procs[0].pid)), 60)
        assert computing, "the first check started no worker"
        started = time.monotonic()
        # without --json: its progress lines on stderr say what it did with the suite
        procs.append(subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, start_new_session=True))
        (out1, err1), (out2, err2) = (p.communicate(timeout=300) for p in procs)
        waited = time.monotonic() - started
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate(timeout=60)
    first = json.loads(out1)
    print(f"\nthe second check took {waited:.1f}s, the first {first['seconds']:.1f}s")
    assert first["items"] == {"v1 1x4": "ran"} and first["cache"]["written"] >= 1, err1[-3000:]
    assert procs[1].returncode == procs[0].returncode, err2[-3000:]
    progress = [line for line in err2.splitlines() if line.startswith("check: v1 1x4: ")]
    assert [line.split(":")[2].strip() for line in progress] == ["waiting", "cached"], err2[-3000:]
    # the new violations' minimised traces too: each is computed by one check or the other, never both
    entries = [p for p in (tmp_path / "cache").glob("*.json") if p.name != "history.json"]
    minimised_here = sum(line.startswith("check: minimise ") and line.endswith(": done") for line in err2.splitlines())
    assert (first["cache"]["written"] - 1) + minimised_here == len(entries) - 1 > 0, err2[-3000:]
    assert not list((tmp_path / "cache").glob("*.lock"))


# -- an output folder that cannot be made: one line before the work, not a traceback after it ------------------


DEBIAN_6_12 = TESTS / "kernels" / "debian-6.12"


def _under_a_file(tmp_path: Path) -> Path:
    """A folder that cannot be made by anyone, root included: its parent is a regular file."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "out"


@pytest.mark.parametrize("command", ["prove", "explore", "check"])
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path: Path, command: str) -> None:
    """The runs below take minutes; refused up front they take a second, and make nothing (before: `prove
    --traces` and `explore --traces` made the folder after the search, and a bad one was a traceback there)."""
    if command == "explore" and not (DEBIAN_6_12 / "mm" / "percpu.c").exists():
        pytest.skip("no Debian 6.12 source: python tests/kernels/debian.py")
    bad = _under_a_file(tmp_path)
    args: list[str | Path] = {
        "prove": ["prove", "--variant", "v1", "--geometry", "2x8", "--no-layout", "--traces", bad],
        "explore": ["explore", "--source", DEBIAN_6_12, "--traces", bad],
        "check": ["check", "--config", write_check_config(tmp_path), "--junit", bad / "report.xml"],
    }[command]
    started = time.monotonic()
    result = pcpu_verify(*args, cwd=tmp_path, timeout=60)
    assert_one_error_line(result, str(bad), "cannot create", "is not a directory")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "cache").exists()


def test_a_trace_folder_that_fails_when_made_is_one_line() -> None:
    """Where the folder passes the first look but making it fails (procfs: writable to root, no new entries), the
    traces' write is one error line after the progress lines, exit 2 (refused up front when not root)."""
    result = pcpu_verify("prove", "--variant", "v1", "--geometry", "1x4", "--no-layout", "--invariant",
                         "chunk-contig-hint-within-a-block", "--op", "free", "--traces", "/proc/pcpu-verify-traces",
                         timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if not line.startswith("prove: ")]
    assert len(errors) == 1, errors
    assert errors[0] == "pcpu-verify: error: /proc/pcpu-verify-traces: cannot create: No such file or directory" or \
        errors[0].startswith("pcpu-verify: error: /proc/pcpu-verify-traces: cannot create: /proc is not"), errors
