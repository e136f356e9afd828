"""Plugin discovery, isolation of broken plugins, and the documented hook contract."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pluggy
import pytest

from conftest import OWN_PLUGINS, ROOT, run_cli, run_cli_process
from mllzoo import hookspecs
from mllzoo.plugins import pm


def test_every_hook_is_documented():
    hooks = [name for name in dir(hookspecs) if name.startswith("mllzoo_")]
    assert {
        "mllzoo_register_models",
        "mllzoo_load_model",
        "mllzoo_encode_images",
        "mllzoo_encode_texts",
        "mllzoo_register_commands",
        "mllzoo_register_embedders",
    } <= set(hooks)
    for name in hooks:
        doc = getattr(hookspecs, name).__doc__
        assert doc and len(doc.strip()) > 40, f"{name} needs a docstring"


def test_registered_plugin_passes_check_pending(tinyclip_plugin):
    pm.check_pending()
    assert "tinyclip" in [pm.get_name(p) for p in pm.get_plugins()]


def test_plugin_unregistered_after_test():
    assert pm.get_plugin("tinyclip") is None


def test_load_hook_is_firstresult_and_other_families_pass(tinyclip_plugin):
    from mllzoo.models.catalog import discover_models
    from mllzoo.models.vlm import load_model

    entry = discover_models()["tinyclip/tiny-a.seed0"]
    assert entry.plugin == "tinyclip"
    loaded = load_model(entry.spec, "cpu")
    assert loaded.spec.id == "tinyclip/tiny-a.seed0"


def test_installed_plugin_is_discovered_through_entry_points(tinyclip_site):
    env = {"PYTHONPATH": str(tinyclip_site), "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip"}
    code = "from importlib.metadata import entry_points; print([e.name for e in entry_points(group='mllzoo')])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
    ).stdout
    assert "tinyclip" in out
    listed = json.loads(run_cli("plugins", "--json", env=env).stdout)
    tiny = [p for p in listed if p["name"] == "mllzoo-plugin-tinyclip"][0]
    assert (
        tiny["version"] == "0.1" and "mllzoo_load_model" in tiny["hooks"] and tiny["error"] is None
    )


def test_load_plugins_env_selects_distributions(tinyclip_site):
    env = {"PYTHONPATH": str(tinyclip_site), "MLLZOO_LOAD_PLUGINS": ""}
    listed = json.loads(run_cli("plugins", "--json", env=env).stdout)
    assert all(p["name"] != "mllzoo-plugin-tinyclip" for p in listed)
    env["MLLZOO_LOAD_PLUGINS"] = "mllzoo-plugin-tinyclip"
    assert [p["name"] for p in json.loads(run_cli("plugins", "--json", env=env).stdout)] == [
        "mllzoo-plugin-tinyclip"
    ]


def broken_site(tmp_path):
    site = tmp_path / "broken"
    info = site / "mllzoo_plugin_broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mllzoo-plugin-broken\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[mllzoo]\nbroken = mllzoo_broken\n")
    (site / "mllzoo_broken.py").write_text("raise RuntimeError('boom at import')\n")
    return site


def test_broken_plugin_is_a_warning_not_a_crash(tmp_path):
    env = {
        "PYTHONPATH": str(broken_site(tmp_path)),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-broken",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
    }
    result = run_cli("plugins", "--json", env=env)
    assert result.returncode == 0
    assert (
        "Warning: plugin mllzoo-plugin-broken failed to load: RuntimeError: boom at import"
        in result.stderr
    )
    broken = [p for p in json.loads(result.stdout) if p["name"] == "mllzoo-plugin-broken"][0]
    assert "boom at import" in broken["error"]
    assert run_cli("models", env=env).returncode == 0


def test_strict_plugins_reraises(tmp_path):
    env = {
        "PYTHONPATH": str(broken_site(tmp_path)),
        "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-broken",
        "MLLZOO_STRICT_PLUGINS": "1",
    }
    result = run_cli("plugins", env=env)
    assert result.returncode != 0 and "boom at import" in result.stderr


def test_cli_import_pulls_in_no_torch():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mllzoo.cli.main"],
        capture_output=True,
        text=True,
    ).stderr
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in out.splitlines() if "|" in line
    }
    assert "click" in imported and "pluggy" in imported
    assert not imported & {"torch", "open_clip", "transformers", "timm", "numpy"}


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("plugins", "models", "install", "uninstall", "register", "graph"):
        assert command in result.stdout


def test_hookimpl_marker_is_mllzoos():
    import mllzoo

    assert (
        isinstance(mllzoo.hookimpl, pluggy.HookimplMarker)
        and mllzoo.hookimpl.project_name == "mllzoo"
    )


def test_the_family_plugins_are_entry_points_of_the_group():
    installed = {ep.name: ep.value for ep in entry_points(group="mllzoo")}
    assert {
        "openclip": "mllzoo_openclip",
        "eva": "mllzoo_eva",
        "hf": "mllzoo_hf",
        "minizoo": "mllzoo_minizoo",
    }.items() <= installed.items()


def test_uninstall_works_while_a_broken_plugin_is_installed(tmp_path):
    env = {"PYTHONPATH": str(broken_site(tmp_path)), "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-broken"}
    result = run_cli_process("uninstall", "-y", "mllzoo-plugin-not-installed", env=env)
    assert result.returncode == 0, result.stderr
    assert (
        "Skipping mllzoo-plugin-not-installed as it is not installed"
        in result.stderr + result.stdout
    )
    assert "boom at import" in result.stderr  # the warning, not a crash


def test_install_runs_pip_in_mllzoos_environment(tmp_path):
    result = run_cli_process("install", "--help")
    assert result.returncode == 0 and "pip into mllzoo's own environment" in result.stdout
    missing = run_cli_process("install", str(tmp_path / "no-such-plugin"))
    assert missing.returncode != 0 and "no-such-plugin" in missing.stderr + missing.stdout


def test_install_needs_a_package():
    result = run_cli_process("install")
    assert result.returncode == 2 and "name a plugin to install" in result.stderr


def test_models_filters_list_exactly_what_they_name(tmp_path):
    import shutil

    registry = tmp_path / "registry.db"
    shutil.copyfile(ROOT / "registry.db", registry)  # eight minizoo models labeled

    def listed(*args):
        result = run_cli("--registry", str(registry), "models", "--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    everything = listed()
    minizoo = listed("--family", "minizoo")
    assert len(minizoo) == 8 and {row["family"] for row in minizoo} == {"minizoo"}
    assert {row["id"] for row in minizoo} == {
        row["id"] for row in everything if row["family"] == "minizoo"
    }
    hub = listed("--hub", "mll49")
    assert len(hub) == 49 and all("mll49" in row["hubs"] for row in hub)
    assert {row["id"] for row in hub} == {
        row["id"] for row in everything if "mll49" in row.get("hubs", [])
    }
    labeled = listed("--labeled")
    assert {row["id"] for row in labeled} == {row["id"] for row in minizoo} and all(
        row["labeled"] for row in labeled
    )
    assert listed("--family", "open_clip", "--labeled") == []
    assert len(everything) > len(hub) + len(minizoo)


@pytest.mark.slow
def test_session_fixtures_leave_the_environment_alone(tinyclip_site, world):
    """Subprocesses get their settings through ``env``; nothing a fixture sets leaks into later tests."""
    import os

    assert "TINYCLIP_DIR" not in os.environ


STRAY = """from mllzoo import ModelSpec, hookimpl


@hookimpl
def mllzoo_register_models(register):
    register(ModelSpec(family="stray", arch="a", tag="b", license="MIT", source="nowhere"))
"""


def test_a_stray_installed_plugin_changes_no_test_result(tmp_path):
    """An installed plugin no test names stays unloaded, in the CLI subprocesses a test starts too."""
    import tinyclip

    (tmp_path / "strayplugin.py").write_text(STRAY)
    site = tinyclip.install_distribution(
        tmp_path / "site", "mllzoo-plugin-stray", tmp_path / "strayplugin.py"
    )
    assert OWN_PLUGINS == [
        "mllzoo-plugin-eva",
        "mllzoo-plugin-hf",
        "mllzoo-plugin-minizoo",
        "mllzoo-plugin-openclip",
    ]
    unnamed = run_cli("models", "--json", env={"PYTHONPATH": str(site)})
    assert unnamed.returncode == 0, unnamed.stderr
    assert not [m for m in json.loads(unnamed.stdout) if m["id"].startswith("stray/")]
    named = run_cli(
        "models",
        "--json",
        env={"PYTHONPATH": str(site), "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-stray"},
    )
    assert "stray/a.b" in [
        m["id"] for m in json.loads(named.stdout)
    ]  # installed, and loads once named


def test_every_hook_is_exercised_by_some_test():
    """Each hook in hookspecs.py is implemented or called in a test, a test fixture or the plugin template."""
    specs = [name for name in dir(hookspecs) if name.startswith("mllzoo_")]
    sources = [p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_plugins.py"]
    sources += list((ROOT / "plugins").glob("*/tests/*.py"))
    sources.append(
        ROOT / "CONTRIBUTING.md"
    )  # its plugin template is built and run by tests/test_plugin_wheel.py
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources)
    assert len(specs) >= 8
    assert [name for name in specs if name not in text] == []
