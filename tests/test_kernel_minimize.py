"""``minimize --source``: the minimiser of counterexamples/minimize.py run on a C build, as a user runs it.

On Debian's 6.12 (``python tests/kernels/debian.py`` writes it; CI has it):
a padded trace of a hint the C leaves stale is cut to a short one, at a
smaller geometry, and the file written replays on the C with ``replay
--source``; a claim the C does not break is exit 1, bad input exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pcpuverify.counterexamples.kernel_search import CTrace
from pcpuverify.model.geometry import Geometry
from pcpuverify.model.ops import Alloc, Free, Populate, op_to_json

KERNEL = Path(__file__).with_name("kernels") / "debian-6.12"
STALE = "chunk-hint-accurate-in-one-block"
# explore --source debian-6.12 at 2x8 finds the stale hint after 3 ops: alloc 9, alloc 1, free of the second;
# padded here with ops that have nothing to do with it
PADDED = (Alloc(9, 1), Populate(0, 2), Alloc(1, 1), Alloc(1, 1, True), Free(10), Free(9))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pcpuverify.cli import main; sys.argv[0] = 'pcpu-verify'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600,
                          check=False)


def write_c_trace(path: Path, ops: tuple, violates: str, geometry: str = "2x8") -> Path:
    g = Geometry.parse(geometry)
    path.write_text(json.dumps({"format": "pcpu-verify-c-trace/1", "geometry": g.to_json(),
                                "ops": [op_to_json(op) for op in ops], "violates": violates, "message": ""}))
    return path


@pytest.mark.slow
def test_minimize_on_the_c_cuts_a_padded_trace_and_the_result_replays_there(tmp_path: Path) -> None:
    assert (KERNEL / "mm" / "percpu.c").is_file(), f"{KERNEL} is absent: run python tests/kernels/debian.py"
    trace = write_c_trace(tmp_path / "padded.json", PADDED, STALE)
    before = cli("replay", str(trace), "--source", str(KERNEL))
    assert before.returncode == 0, before.stdout + before.stderr

    out = tmp_path / "min.json"
    proc = cli("minimize", str(trace), "--source", str(KERNEL), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["invariant"] == STALE and report["layout"] == "5.14" and report["reproduced"]
    assert report["original_ops"] == len(PADDED) and report["minimized_ops"] < 4
    written = json.loads(out.read_text())
    assert written["format"] == "pcpu-verify-c-trace/1" and written["violates"] == STALE
    minimized = CTrace.from_json(written)
    assert len(minimized.ops) == report["minimized_ops"]
    # the geometry is a reduction too: fewer pages or smaller blocks than 2x8
    assert (minimized.geometry.nr_pages, minimized.geometry.block_bits) < (2, 8) or \
        minimized.geometry.block_bits < 8

    again = cli("replay", str(out), "--source", str(KERNEL))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"claimed violation of {STALE} reproduced at step {len(minimized.ops) - 1} on the C" in again.stdout


def test_minimize_on_the_c_draws_the_minimised_trace(tmp_path: Path) -> None:
    trace = write_c_trace(tmp_path / "padded.json", PADDED, STALE)
    proc = cli("minimize", str(trace), "--source", str(KERNEL))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(PADDED)} ops ->" in proc.stdout and f"still violates {STALE}" in proc.stdout
    assert "contig_hint" in proc.stdout  # the breaking step's message
    assert (tmp_path / "padded.min.json").is_file()


def test_a_claim_the_c_does_not_break_is_exit_1_and_nothing_written(tmp_path: Path) -> None:
    trace = write_c_trace(tmp_path / "t.json", (Alloc(1, 1),), STALE)
    proc = cli("minimize", str(trace), "--source", str(KERNEL))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "does not break" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t.min.json").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    trace = write_c_trace(tmp_path / "t.json", PADDED, STALE)
    for args in (("--source", str(tmp_path / "nowhere")),
                 ("--source", str(KERNEL), "-o", str(tmp_path / "no" / "such" / "dir.json"))):
        proc = cli("minimize", str(trace), *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("pcpu-verify: error:") and len(proc.stderr.strip().splitlines()) == 1
    freed_nothing = write_c_trace(tmp_path / "bad.json", (Free(3),), STALE)
    proc = cli("minimize", str(freed_nothing), "--source", str(KERNEL))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
