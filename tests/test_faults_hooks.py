"""Fault injection on the hooks ``register`` asks before labeling (issue 21): ``mllzoo_model_available``
and ``mllzoo_label_files`` are isolated like the other hooks and their answers type-checked, and a
shipped label made on another graph is one warning. Real plugin distributions, real ``mllzoo``
subprocesses, real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SYNSETS, run_cli, write_images
from helpers import BAD, FAULTY, GOOD, assert_one_line, faulty_env, stored_label


def plain_register(site: Path, db: Path, mode: str, **extra: str):
    return run_cli("register", "--json", env=faulty_env(site, db, mode, **extra))


@pytest.mark.parametrize(
    "mode, message",
    [
        (
            "available-raise",
            f"plugin {FAULTY}: could not tell whether {BAD} is available: RuntimeError: boom in available-raise",
        ),
        (
            "available-exit",
            f"plugin {FAULTY}: could not tell whether {BAD} is available: SystemExit: 6",
        ),
        (
            "available-no",
            f"plugin {FAULTY} answered 'no' for whether {BAD} is available, not True or False",
        ),
    ],
)
def test_a_failing_availability_answer_stops_only_its_model(
    mode, message, faulty_site, fresh_registry
):
    result = plain_register(faulty_site, fresh_registry, f"available,{mode}")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["labeled"] == [GOOD] and report["not_here"] == [BAD]
    assert_one_line(result.stderr, message)
    assert stored_label(fresh_registry, BAD) is None


@pytest.mark.parametrize(
    "mode, message",
    [
        (
            "labels-raise",
            f"plugin {FAULTY} failed to list its label files: RuntimeError: boom in labels-raise",
        ),
        ("labels-exit", f"plugin {FAULTY} failed to list its label files: SystemExit: 8"),
        (
            "labels-string",
            f"plugin {FAULTY} listed its label files as str 'abc.mllzoo-labels', not a list of paths",
        ),
    ],
)
def test_a_failing_label_files_answer_is_one_warning_and_register_labels(
    mode, message, faulty_site, fresh_registry
):
    result = plain_register(faulty_site, fresh_registry, f"available,{mode}")
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)["labeled"]) == [BAD, GOOD]
    assert_one_line(result.stderr, message)
    assert result.stderr.count("Warning") == 1, result.stderr


def test_a_shipped_label_of_another_graph_is_one_warning_naming_both_graphs(
    faulty_site, fresh_registry, tmp_path
):
    other = tmp_path / "other"
    for seed, (name, color) in enumerate(SYNSETS.items()):
        write_images(other / "samples" / name, color, 5, 50 + seed)
    env = faulty_env(faulty_site, other / "r.db")
    assert run_cli("graph", "build", "--samples", str(other / "samples"), env=env).returncode == 0
    assert run_cli("register", GOOD, env=env).returncode == 0
    shipped = other / "good.mllzoo-labels"
    assert run_cli("labels", "export", GOOD, "-o", str(shipped), env=env).returncode == 0
    graphs = [
        json.loads(run_cli("graph", "info", "--json", env=faulty_env(faulty_site, db)).stdout)["id"]
        for db in (other / "r.db", fresh_registry)
    ]
    result = run_cli(
        "register",
        GOOD,
        "--json",
        env=faulty_env(faulty_site, fresh_registry, FAULTY_LABELS=str(shipped)),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["imported"] == [] and report["labeled"] == [GOOD]
    assert_one_line(
        result.stderr,
        f"Warning: plugin {FAULTY} ships {shipped}, made on graph {graphs[0]}, "
        f"but this registry's graph is {graphs[1]}",
    )
    assert result.stderr.count("Warning") == 1


SHADOW = """import json
from pathlib import Path

from mllzoo import ModelSpec, hookimpl


@hookimpl
def mllzoo_register_models(register):
    for row in json.loads((Path(__file__).parent / "shadowplug_models.json").read_text()):
        register(ModelSpec(family="shadow", **row))
"""


def install_with_record(site: Path, files: dict[str, str]) -> None:
    """A distribution ``mllzoo-plugin-shadow`` as pip leaves it: its files and a RECORD naming them."""
    site.mkdir(parents=True)
    for name, text in files.items():
        (site / name).write_text(text)
    info = site / "mllzoo_plugin_shadow-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mllzoo-plugin-shadow\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[mllzoo]\nshadowplug = shadowplug\n")
    record = [
        *files,
        f"{info.name}/METADATA",
        f"{info.name}/entry_points.txt",
        f"{info.name}/RECORD",
    ]
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in record))


def check_installed_in(pythonpath: list[Path]):
    import os
    import subprocess
    import sys

    code = "from mllzoo.testing import check_installed; print(len(check_installed('mllzoo-plugin-shadow')))"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_check_installed_says_when_a_source_tree_shadows_the_install(tmp_path):
    table = json.dumps([{"arch": "a", "tag": "b", "license": "MIT", "source": "x"}])
    install_with_record(
        tmp_path / "site", {"shadowplug.py": SHADOW, "shadowplug_models.json": table}
    )
    assert check_installed_in([tmp_path / "site"]).stdout == "1\n"
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "shadowplug.py").write_text(SHADOW)
    (tmp_path / "source" / "shadowplug_models.json").write_text(table)
    result = check_installed_in([tmp_path / "source", tmp_path / "site"])
    assert result.returncode == 1
    assert "a source tree on sys.path (the current folder?) shadows the install" in result.stderr, (
        result.stderr
    )


def test_check_installed_names_a_data_file_missing_from_the_wheel(tmp_path):
    install_with_record(
        tmp_path / "site", {"shadowplug.py": SHADOW}
    )  # no package-data table: no models table
    result = check_installed_in([tmp_path / "site"])
    assert result.returncode == 1
    assert (
        "AssertionError: mllzoo-plugin-shadow:" in result.stderr
        and "shadowplug_models.json is not installed: list it in [tool.setuptools.package-data]"
        in result.stderr
    ), result.stderr


@pytest.mark.parametrize(
    "available, labels, message",
    [
        (lambda spec: "no", lambda: [], "mllzoo_model_available answered 'no', not True or False"),
        (
            lambda spec: True,
            lambda: [],
            "mllzoo_model_available answered True for not-kit/x.y, another family's model",
        ),
        (None, lambda: "abc.mllzoo-labels", "mllzoo_label_files answered str, not a list"),
        (None, lambda: ["/nonexistent.mllzoo-labels"], "label file not found"),
    ],
)
def test_the_conformance_kit_checks_the_offline_hooks(available, labels, message):
    import types

    from mllzoo import ModelSpec, hookimpl
    from mllzoo.testing import check_offline_hooks

    plugin = types.ModuleType("kitplug")
    if available is not None:
        plugin.mllzoo_model_available = hookimpl(lambda spec: available(spec))
    plugin.mllzoo_label_files = hookimpl(lambda: labels())
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_offline_hooks(plugin, [ModelSpec(family="kit", arch="a", tag="b", source="here")])
