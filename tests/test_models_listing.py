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


def test_an_installed_plugin_that_cannot_offer_a_labeled_model_here_is_not_called_missing(world):
    """The labels' plugin is installed, but offers none of their models on this machine (as the
    open_clip plugin offers a user's checkpoint only while its setting names it)."""
    import types

    from mllzoo import hookimpl
    from mllzoo.plugins import load_plugins, pm

    offers_nothing = types.ModuleType("tinyclip_without_checkpoints")

    @hookimpl
    def mllzoo_register_models(register) -> None:
        """Its checkpoint setting is not set here: no model to offer."""

    offers_nothing.mllzoo_register_models = mllzoo_register_models  # type: ignore[attr-defined]
    load_plugins()
    pm.register(offers_nothing, "mllzoo-plugin-tinyclip")
    try:
        lines = listing(world, "--labeled").stdout.splitlines()
        shown = CliRunner().invoke(
            cli,
            ["--registry", world[1]["MLLZOO_REGISTRY"], "models", "show", "tinyclip/tiny-a.seed0"],
        )
        card = json.loads(
            CliRunner()
            .invoke(
                cli,
                [
                    "--registry",
                    world[1]["MLLZOO_REGISTRY"],
                    "models",
                    "show",
                    "tinyclip/tiny-a.seed0",
                    "--json",
                ],
            )
            .stdout
        )
    finally:
        pm.unregister(name="mllzoo-plugin-tinyclip")
    cause = "plugin installed, but it does not offer this model here"
    assert all(cause in line and "plugin not installed" not in line for line in lines), lines
    assert cause in shown.stdout.splitlines()[0] and "not installed" not in shown.stdout
    assert (card["installed"], card["plugin_installed"]) == (False, True)
    after = listing(world, "--labeled").stdout  # the plugin gone: the old answer is right again
    assert "plugin not installed" in after
