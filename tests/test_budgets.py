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
