"""``mllzoo models`` lists what the plugins offer and what the registry has labeled, one line each,
with what is known of its costs (a real labeled registry; its tiny models' plugin is not loaded here)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mllzoo.cli.main import cli


def listing(world, *args: str):
    return CliRunner().invoke(cli, ["--registry", world[1]["MLLZOO_REGISTRY"], "models", *args])


def test_labeled_models_of_an_absent_plugin_are_listed_with_their_facts(world):
    text = listing(world, "--labeled")
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == [
        "tinyclip/tiny-a.seed0  (0.1M params, labeled, plugin not installed)",
        "tinyclip/tiny-b.seed0  (0.1M params, labeled, plugin not installed)",
    ]
    rows = json.loads(listing(world, "--labeled", "--json").stdout)
    assert [(r["id"], r["labeled"], r["installed"], r["params_m"]) for r in rows] == [
        ("tinyclip/tiny-a.seed0", True, False, 0.1),
        ("tinyclip/tiny-b.seed0", True, False, 0.1),
    ]


def test_filters_combine(world):
    assert listing(world, "--labeled", "--family", "open_clip").stdout == ""
    everything = json.loads(listing(world, "--json").stdout)
    assert {"tinyclip/tiny-a.seed0"} < {row["id"] for row in everything}
    assert all(not row["labeled"] for row in everything if row["family"] != "tinyclip")
