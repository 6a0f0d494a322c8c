"""The ``solver`` key of ``[tool.pcpu-verify]``: optional, z3 by default, the choices of ``prove --solver``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_faults import assert_one_error_line, pcpu_verify, write_check_config

from pcpuverify.check.config import load_config
from pcpuverify.check.keys import suite_key
from pcpuverify.model.geometry import Geometry
from pcpuverify.proofs.solver import SOLVER_CHOICES


def test_a_config_without_solver_is_z3_the_deterministic_mode(tmp_path: Path) -> None:
    config = load_config(write_check_config(tmp_path))
    assert config.solver == "z3" and config.suite_options.solver.solver == "z3"
    assert config.suite_options.solver.deterministic


@pytest.mark.parametrize("solver", SOLVER_CHOICES)
def test_each_choice_reaches_the_suites_and_their_cache_key(tmp_path: Path, solver: str) -> None:
    config = load_config(write_check_config(tmp_path, solver=solver))
    assert config.suite_options.solver.solver == solver
    (tmp_path / "default").mkdir()
    default = load_config(write_check_config(tmp_path / "default"))
    g = Geometry.parse("1x4")
    assert (suite_key(config, "v1", g) == suite_key(default, "v1", g)) == (solver == "z3")


def test_a_bad_solver_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_check_config(tmp_path, solver="yices")
    result = pcpu_verify("check", "--config", tmp_path / "check.toml", cwd=tmp_path, timeout=60)
    assert_one_error_line(result, "'solver'", "yices", "portfolio")


@pytest.mark.slow
def test_check_with_bitwuzla_answers_with_bitwuzla_and_z3s_verdicts(tmp_path: Path) -> None:
    """The same rows as Z3's on the smallest check, every proof row answered by Bitwuzla (the cache's rows)."""
    outputs = {}
    for solver in ("z3", "bitwuzla"):
        where = tmp_path / solver
        where.mkdir()
        write_check_config(where, solver=solver)
        (where / "baseline.json").write_text(json.dumps({"format": "pcpu-verify-baseline/1", "suites": {}}))
        result = pcpu_verify("check", "--config", where / "check.toml", "--json", cwd=where, timeout=600)
        assert result.returncode in (0, 1), result.stderr[-3000:]
        outputs[solver] = json.loads(result.stdout)
        entries = [json.loads(p.read_text()) for p in (where / "cache").glob("*.json") if p.name != "history.json"]
        suites = [e["payload"] for e in entries if isinstance(e["payload"], list)]
        assert suites, entries
        # a route's rows ("bitwuzla (runs from the blocks)") name their solvers before it
        answered = {r["solver"].split(" (")[0] for rows in suites for r in rows if r.get("solver") is not None}
        assert answered == {solver}

    def verdicts(out: dict[str, Any]) -> list[tuple[object, ...]]:
        return sorted((r["kind"], r["variant"], r["geometry"], r["invariant"], r["op"], r["result"])
                      for r in out["results"])

    assert verdicts(outputs["bitwuzla"]) == verdicts(outputs["z3"])
