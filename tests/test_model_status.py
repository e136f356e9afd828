"""A labeled model whose plugin is installed but does not offer it here (its checkpoint setting names
another checkpoint only) is called that on every surface: ``labels list``, ``recommend`` (its notes,
errors, ``--include-uninstalled`` and the models-to-load lines), ``predict`` and the web pages; none of
them suggests installing the installed plugin. The same models with no plugin at all still get the
install command. A real labeled registry (the ``world``), the plugin a real installed distribution."""

from __future__ import annotations

import inspect
import json
import types

import pytest

from conftest import run_cli
from helpers import PREFIX, client_get, ok, one_line_error, query

OFFERED, UNOFFERED = "tinyclip/tiny-a.seed0", "tinyclip/tiny-b.seed0"
CAUSE = "plugin installed, but it does not offer this model here"
GROUP_CAUSE = (
    "have their plugin installed (mllzoo-plugin-tinyclip), but it does not offer them here"
)
INSTALL = "mllzoo install"


def register_tiny_a_only(register) -> None:
    """The plugin's checkpoint setting names tiny-a's checkpoint only: tiny-b is not offered here."""
    from mllzoo import ModelSpec

    register(ModelSpec(family="tinyclip", arch="tiny-a", tag="seed0", image_size=32, params_m=0.1))


PLUGIN = (  # the same plugin as an installed distribution's module, for fresh processes
    f"from mllzoo import hookimpl\n\n\n{inspect.getsource(register_tiny_a_only)}\n\n"
    "mllzoo_register_models = hookimpl(register_tiny_a_only)\n"
)


@pytest.fixture(scope="module")
def partial(world, tmp_path_factory):
    """The world's environment with its plugin installed but offering tiny-a only."""
    import tinyclip

    site = tmp_path_factory.mktemp("partial-site")
    module = site / "src" / "tinyclip_partial.py"
    module.parent.mkdir()
    module.write_text(PLUGIN)
    tinyclip.install_distribution(site, "mllzoo-plugin-tinyclip", module)
    return world[0], {**world[1], "PYTHONPATH": str(site)}


def test_labels_list_names_the_real_cause(partial, world):
    lines = ok(run_cli("labels", "list", env=partial[1])).splitlines()
    assert lines == [
        f"{OFFERED}  plugin mllzoo-plugin-tinyclip (installed)",
        f"{UNOFFERED}  plugin mllzoo-plugin-tinyclip ({CAUSE}: its checkpoint setting or weights "
        "are missing on this machine)",
    ]
    rows = json.loads(ok(run_cli("labels", "list", "--json", env=partial[1])))
    assert [(r["installed"], r["availability"].split(":")[0]) for r in rows] == [
        (True, "installed"),
        (False, CAUSE),
    ]
    absent = ok(run_cli("labels", "list", env={**world[1], "MLLZOO_LOAD_PLUGINS": ""}))
    assert (
        absent.count(
            "plugin mllzoo-plugin-tinyclip (not installed: mllzoo install mllzoo-plugin-tinyclip)"
        )
        == 2
    )


def test_recommend_leaves_the_unoffered_model_out_and_says_why(partial):
    root, env = partial
    classes = str(root / "classes.txt")
    mixed = run_cli("recommend", classes, "-k", "2", "--json", env=env)
    assert json.loads(ok(mixed))["models"] == [OFFERED]
    assert "1 labeled model(s) left out, they cannot run here" in mixed.stderr
    assert f"{UNOFFERED} {GROUP_CAUSE}" in mixed.stderr and INSTALL not in mixed.stderr

    named = one_line_error(
        run_cli("recommend", classes, "--models", f"{OFFERED},{UNOFFERED}", env=env), GROUP_CAUSE
    )
    assert INSTALL not in named and "--include-uninstalled" in named
    needed = one_line_error(
        run_cli(
            "predict", str(root / "task"), "--classes", classes, "--models", UNOFFERED, env=env
        ),
        GROUP_CAUSE,
    )
    assert INSTALL not in needed and "--include-uninstalled" not in needed


def test_recommend_include_uninstalled_marks_the_chosen_unoffered_model(partial):
    root, env = partial
    args = ("recommend", str(root / "classes.txt"), "-k", "2", "--include-uninstalled")
    text = run_cli(*args, env={**env, "COLUMNS": "400"})
    to_load = ok(text).split("model(s) to load:")[1].splitlines()
    assert any(
        line.startswith(f"  {UNOFFERED} (mllzoo-plugin-tinyclip, {CAUSE}") for line in to_load
    ), to_load
    assert any(line.startswith(f"  {OFFERED} (mllzoo-plugin-tinyclip) for") for line in to_load), (
        to_load
    )
    assert f"selected model(s) cannot run here: {UNOFFERED} {GROUP_CAUSE}" in text.stderr
    assert INSTALL not in text.stderr
    data = json.loads(ok(run_cli(*args, "--json", env=env)))
    assert data["availability"][OFFERED] == "installed"
    assert data["availability"][UNOFFERED].startswith(CAUSE)


def test_with_no_model_running_here_the_note_says_why_not_install(partial, world):
    """No model offered at all (the setting is not set): recommend chooses among all, with the cause."""
    root, env = partial
    site = root / "none-offered-site"
    module = site / "src" / "tinyclip_unset.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(
        "from mllzoo import hookimpl\n\n\n@hookimpl\ndef mllzoo_register_models(register):\n    pass\n"
    )
    import tinyclip

    tinyclip.install_distribution(site, "mllzoo-plugin-tinyclip", module)
    unset = {**env, "PYTHONPATH": str(site)}
    done = run_cli("recommend", str(root / "classes.txt"), "-k", "2", "--json", env=unset)
    assert set(json.loads(ok(done))["models"]) == {OFFERED, UNOFFERED}
    assert "none of the labeled models can run here" in done.stderr
    assert GROUP_CAUSE in done.stderr and INSTALL not in done.stderr
    absent = run_cli(
        "recommend",
        str(root / "classes.txt"),
        "--json",
        env={**world[1], "MLLZOO_LOAD_PLUGINS": ""},
    )
    assert "need a plugin that is not installed here: mllzoo install" in absent.stderr


@pytest.fixture
def tiny_a_only_here():
    """The test process itself (the web pages run in it) with the plugin offering tiny-a only."""
    from mllzoo import hookimpl
    from mllzoo.plugins import load_plugins, pm

    plugin = types.ModuleType("tinyclip_partial")
    plugin.mllzoo_register_models = hookimpl(register_tiny_a_only)  # type: ignore[attr-defined]
    load_plugins()
    pm.register(plugin, "mllzoo-plugin-tinyclip")
    yield
    pm.unregister(name="mllzoo-plugin-tinyclip")


def test_web_pages_name_the_real_cause(world, tiny_a_only_here):
    pytest.importorskip("datasette", reason="the web extra is not installed")
    from datasette.app import Datasette

    ds = Datasette(immutables=[world[1]["MLLZOO_REGISTRY"]])
    card = json.loads(client_get(ds, f"{PREFIX}/model/{UNOFFERED}.json").text)
    assert (card["installed"], card["plugin_installed"]) == (False, True)
    assert card["availability"].startswith(CAUSE)
    page = client_get(ds, f"{PREFIX}/model/{UNOFFERED}").text
    assert f'<span id="availability">{CAUSE}' in page and "not installed" not in page
    shown = client_get(ds, f"{PREFIX}/model/{OFFERED}").text
    assert '<span id="availability">installed</span>' in shown

    asked = query(["dog", "cat", "banana"], k="2", include_uninstalled="1")
    html = client_get(ds, f"{PREFIX}/recommend?{asked}").text
    to_load = html.split('id="to-load"')[1].split("</p>")[0]
    assert f"{UNOFFERED}</a> (mllzoo-plugin-tinyclip, {CAUSE}" in to_load, to_load
    assert f"{OFFERED}</a> (mllzoo-plugin-tinyclip)" in to_load, to_load
    document = json.loads(client_get(ds, f"{PREFIX}/recommend.json?{asked}").text)
    assert document["availability"][UNOFFERED].startswith(CAUSE)
