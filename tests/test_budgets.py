"""Budgets name what they cannot judge (issue 28): a model whose GFLOPs are unknown is not let
through ``--max-gflops`` silently. The tiny family's models declare no GFLOPs; the registry is real."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner

from mllzoo.cli.main import cli


def recommend(world, *args: str):
    root, env = world
    return CliRunner().invoke(
        cli,
        [
            "--registry",
            env["MLLZOO_REGISTRY"],
            "recommend",
            str(root / "classes.txt"),
            "--json",
            "--include-uninstalled",
        ]
        + list(args),
    )


def labeled_models(world) -> list[str]:
    with sqlite3.connect(world[1]["MLLZOO_REGISTRY"]) as conn:
        return sorted(m for (m,) in conn.execute("select model_id from labels"))


def test_max_gflops_names_the_models_it_could_not_judge(world):
    models = labeled_models(world)
    result = recommend(world, "--max-gflops", "5")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "--max-gflops" in line]
    assert warnings == [
        f"Warning: --max-gflops cannot judge {len(models)} model(s) whose GFLOPs are unknown, "
        f"so they count as 0 against it: {', '.join(models)}"
    ]
    assert json.loads(result.stdout)  # the answer still comes


def test_without_a_budget_nothing_is_said(world):
    result = recommend(world)
    assert result.exit_code == 0 and "GFLOPs" not in result.stderr


def test_max_params_keeps_the_sum_of_parameters_within_it(world):
    """Each tiny model declares 0.1M params: 0.15M leaves room for one of them, 0.05M for none."""
    models = labeled_models(world)
    assert len(models) == 2
    both = recommend(world, "-k", "2")
    assert both.exit_code == 0 and len(json.loads(both.stdout)["models"]) == 2
    one = recommend(world, "-k", "2", "--max-params", "0.15")
    assert one.exit_code == 0, one.output
    assert len(json.loads(one.stdout)["models"]) == 1 and "--max-params" not in one.stderr
    none = recommend(world, "--max-params", "0.05")
    assert none.exit_code == 2 and none.stderr.count("\n") == 1, none.output
    assert "no candidate model fits --max-params 0.05: the smallest" in none.stderr
    assert "needs 0.1M params" in none.stderr
    negative = recommend(world, "--max-params", "-1")
    assert negative.exit_code == 2 and "--max-params must be a positive number" in negative.stderr


def test_max_params_names_the_models_it_could_not_judge(world, tmp_path):
    import shutil

    models = labeled_models(world)
    db = tmp_path / "r.db"
    shutil.copyfile(world[1]["MLLZOO_REGISTRY"], db)
    with sqlite3.connect(db) as conn:  # the first model's params not known
        (metadata,) = conn.execute(
            "select metadata from models where id = ?", [models[0]]
        ).fetchone()
        unknown = {**json.loads(metadata), "params_m": None}
        conn.execute(
            "update models set metadata = ? where id = ?", [json.dumps(unknown), models[0]]
        )
    conn.close()
    root, env = world
    result = CliRunner().invoke(
        cli,
        [
            "--registry",
            str(db),
            "recommend",
            str(root / "classes.txt"),
            "--json",
            "--include-uninstalled",
            "--max-params",
            "0.15",
            "--max-gflops",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if "--max-params" in line] == [
        f"Warning: --max-params cannot judge 1 model(s) whose params are unknown, "
        f"so they count as 0 against it: {models[0]}"
    ]
    assert sum("--max-gflops cannot judge" in line for line in result.stderr.splitlines()) == 1
