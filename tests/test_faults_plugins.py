"""Fault injection for plugins and labeling (issue 12): every broken plugin, bad hook answer and
interrupted or re-chunked run ends in one clear line or a correct label, never a traceback or a
silently wrong label. Real plugins installed as entry points (tests/fixtures/faultyplugin.py),
real ``mllzoo`` subprocesses, real SQLite files."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import faultyplugin
import tinyclip
from conftest import SYNSETS, kill_register_after_parts, run_cli, run_cli_process, write_images
from helpers import BAD, FAULTY, GOOD, assert_one_line, faulty_env, stored_label
from mllzoo import labels
from mllzoo.errors import InvalidLabel
from mllzoo.store.registry import Registry

# -- a plugin failing at import or in a registration hook never breaks the CLI ----------------------


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("import-raise", "failed to load: RuntimeError: boom at import"),
        ("import-exit", "failed to load: SystemExit: 3"),
        ("register-models", "failed to register models: RuntimeError: boom in register-models"),
        (
            "register-commands",
            "failed to register commands: RuntimeError: boom in register-commands",
        ),
        (
            "register-embedders",
            "failed to register embedders: RuntimeError: boom in register-embedders",
        ),
    ],
)
@pytest.mark.slow  # real processes
def test_a_failing_plugin_is_one_warning_and_marked_failed(mode, reason, faulty_site, bad_labeled):
    root, db = bad_labeled
    env = faulty_env(faulty_site, db, mode)
    warning = f"Warning: plugin {FAULTY} {reason}"
    listed = run_cli("plugins", "--json", env=env)  # runs every cheap hook, so every fault shows
    assert listed.returncode == 0, listed.stderr
    assert_one_line(listed.stderr, warning)
    assert listed.stderr.count("Warning") == 1
    faulty = [p for p in json.loads(listed.stdout) if p["name"] == FAULTY][0]
    assert faulty["status"] == "failed" and reason in faulty["error"]
    assert f"failed: {reason}" in run_cli("plugins", env=env).stdout
    helped = run_cli("--help", env=env)
    assert helped.returncode == 0 and "uninstall" in helped.stdout and "register" in helped.stdout
    removed = run_cli_process("uninstall", "-y", "mllzoo-plugin-not-installed", env=env)
    assert removed.returncode == 0 and "not installed" in removed.stdout + removed.stderr
    results = [helped, removed]
    if mode == "register-embedders":  # selection asks the plugins for embedders
        results.append(run_cli("recommend", str(root / "classes.txt"), "--json", env=env))
        assert results[-1].returncode == 0 and json.loads(results[-1].stdout)["models"] == [BAD]
    for result in results:  # the warning where the failing hook runs, nothing more
        assert "Traceback" not in result.stderr
        assert [line for line in result.stderr.splitlines() if "Warning" in line] in ([], [warning])


def test_a_healthy_plugin_is_listed_ok_with_its_command(faulty_site, bad_labeled):
    env = faulty_env(faulty_site, bad_labeled[1])
    faulty = [
        p for p in json.loads(run_cli("plugins", "--json", env=env).stdout) if p["name"] == FAULTY
    ][0]
    assert faulty["status"] == "ok" and faulty["error"] is None
    assert run_cli("faulty-hello", env=env).stdout.strip() == "hello from faulty"


@pytest.mark.slow  # real processes
def test_a_plugin_cannot_replace_a_core_command(tmp_path, faulty_site):
    site = tmp_path / "hijack"
    source = tmp_path / "mllzoo_hijack.py"
    source.write_text(
        "import click\nfrom mllzoo import hookimpl\n\n@hookimpl\ndef mllzoo_register_commands(cli):\n"
        "    cli.add_command(click.Command('uninstall', callback=lambda: print('hijacked')))\n"
    )
    tinyclip.install_distribution(site, "mllzoo-plugin-hijack", source)
    env = {"PYTHONPATH": str(site), "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-hijack"}
    result = run_cli_process("uninstall", "-y", "mllzoo-plugin-not-installed", env=env)
    assert result.returncode == 0 and "hijacked" not in result.stdout
    assert_one_line(result.stderr, "Warning: a plugin replaced the core command 'uninstall'")


# -- load and encode faults: the model is reported failed and not labeled; the others are labeled -----


@pytest.mark.parametrize(
    "mode, message",
    [
        ("load", "failed to load: RuntimeError: boom in load"),
        ("load-exit", "failed to load: SystemExit: 5"),
        ("encode-images", "failed to encode images: RuntimeError: boom in encode-images"),
        ("encode-texts", "failed to encode texts: RuntimeError: boom in encode-texts"),
        ("nan-images", "returned NaN image features"),
        ("inf-images", "returned infinite image features"),
        ("zero-images", "returned all-zero image features"),
        ("tensor-images", "returned torch.Tensor image features, not a numpy array"),
        ("int-images", "returned int64 image features, not floats"),
        ("rows-images", "returned image features of shape"),
        ("nan-texts", "returned NaN text features"),
        ("list-texts", "returned list text features, not a numpy array"),
        ("dim-texts", "returned image features of dim 16, earlier 8"),
    ],
)
def test_a_model_whose_plugin_fails_is_reported_and_not_labeled(
    mode, message, faulty_site, fresh_registry
):
    result = run_cli(
        "register", BAD, GOOD, "--json", env=faulty_env(faulty_site, fresh_registry, mode)
    )
    assert result.returncode == 1, result.stderr  # some of the work failed, the rest was done
    report = json.loads(result.stdout)
    assert report["labeled"] == [GOOD] and list(report["failed"]) == [BAD]
    line = f"plugin {FAULTY}: model {BAD} {message}"
    assert line in report["failed"][BAD]
    assert_one_line(result.stderr, f"Warning: {BAD} was not labeled: {line}")
    assert (
        stored_label(fresh_registry, BAD) is None and stored_label(fresh_registry, GOOD) is not None
    )


def test_only_failing_models_exit_non_zero(faulty_site, fresh_registry):
    result = run_cli("register", BAD, env=faulty_env(faulty_site, fresh_registry, "nan-images"))
    assert result.returncode == 1 and "failed 1" in result.stdout
    assert_one_line(result.stderr, f"model {BAD} returned NaN image features")


@pytest.mark.parametrize(
    "mode, message",
    [
        ("nan-images", "returned NaN image features"),
        ("tensor-images", "returned torch.Tensor image features, not a numpy array"),
        ("load", "failed to load: RuntimeError: boom in load"),
    ],
)
def test_predict_refuses_a_failing_model_in_one_line(mode, message, faulty_site, bad_labeled):
    root, db = bad_labeled
    env = faulty_env(faulty_site, db, mode)
    result = run_cli("predict", str(root / "task"), "--classes", str(root / "classes.txt"), env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1] == f"Error: plugin {FAULTY}: model {BAD} {message}"
    )


def test_predict_uses_the_same_model_when_its_plugin_behaves(faulty_site, bad_labeled):
    root, db = bad_labeled
    healthy = run_cli(
        "predict",
        str(root / "task"),
        "--classes",
        str(root / "classes.txt"),
        "--json",
        env=faulty_env(faulty_site, db),
    )
    assert healthy.returncode == 0 and json.loads(healthy.stdout)["models"] == [BAD]


# -- duplicate ids: the first plugin to register keeps it, the second is warned -----------------------


@pytest.mark.parametrize("faulty_first", [False, True])
def test_duplicate_ids_first_registration_wins(faulty_first, faulty_site, tinyclip_site, tmp_path):
    sites = (
        [str(faulty_site), str(tinyclip_site)]
        if faulty_first
        else [str(tinyclip_site), str(faulty_site)]
    )
    env = {
        "PYTHONPATH": os.pathsep.join(sites),
        "MLLZOO_LOAD_PLUGINS": f"{FAULTY},mllzoo-plugin-tinyclip",
        "MLLZOO_REGISTRY": str(tmp_path / "r.db"),
        "FAULTY_MODE": "duplicate",
    }
    first, second = (
        (FAULTY, "mllzoo-plugin-tinyclip") if faulty_first else ("mllzoo-plugin-tinyclip", FAULTY)
    )
    result = run_cli("models", "--json", env=env)
    assert result.returncode == 0, result.stderr
    row = [m for m in json.loads(result.stdout) if m["id"] == "tinyclip/tiny-a.seed0"][0]
    assert row["plugin"] == first and (row["source"] == "an impostor") == faulty_first
    assert_one_line(
        result.stderr,
        f"Warning: plugin {second} registers 1 model id(s) plugin {first} registered "
        f"first, which keeps them: tinyclip/tiny-a.seed0",
    )
    assert result.stderr.count("Warning") == 1


# -- saved parts carry their identity; labels are validated before publishing -----------------------


@pytest.mark.slow  # real processes
def test_resume_with_another_chunk_size_after_kill_matches_a_clean_run(
    faulty_site, fresh_registry, tmp_path
):
    clean_db = tmp_path / "clean.db"
    shutil.copyfile(fresh_registry, clean_db)
    assert (
        run_cli(
            "register", GOOD, "--chunk-size", "6", env=faulty_env(faulty_site, clean_db)
        ).returncode
        == 0
    )
    env = faulty_env(faulty_site, fresh_registry, FAULTY_SLOW="0.25")
    saved = kill_register_after_parts(
        [GOOD, "--chunk-size", "4", "--batch-size", "2"], env, fresh_registry, 3
    )
    assert 3 <= saved < 8  # 30 images in chunks of 4
    with sqlite3.connect(fresh_registry) as conn:
        assert conn.execute("select count(*) from labels").fetchone()[0] == 0
    resumed = run_cli(
        "register", GOOD, "--chunk-size", "6", "--json", env=faulty_env(faulty_site, fresh_registry)
    )
    assert resumed.returncode == 0, resumed.stderr
    assert stored_label(fresh_registry, GOOD) == stored_label(clean_db, GOOD)
    assert (
        json.loads(resumed.stdout)["images_encoded"] == 30
    )  # no part of the 4-image layout fits a 6-image chunk


@pytest.fixture
def faulty_in_process(monkeypatch):
    """The faulty plugin registered in this process (for runs interrupted at a chosen batch)."""
    from mllzoo.plugins import load_plugins, pm

    load_plugins()
    pm.register(faultyplugin, FAULTY)
    monkeypatch.setenv("FAULTY_MODE", "")
    yield faultyplugin
    pm.unregister(name=FAULTY)


@pytest.fixture(scope="module")
def small_graph(tmp_path_factory):
    from mllzoo.graph.concept_graph import build_graph

    root = tmp_path_factory.mktemp("graph") / "samples"
    for seed, (name, color) in enumerate(SYNSETS.items()):
        write_images(root / name, color, 4, seed)
    return build_graph(root), root


def label_with(
    db: Path, graph, samples: Path, interrupt_after: int | None = None, **kwargs
) -> dict | None:
    """Label faulty/good.v0 in-process; ``interrupt_after`` batches in, the run is interrupted."""
    from mllzoo.graph.concept_graph import save_graph
    from mllzoo.labeling.driver import label_models
    from mllzoo.models.catalog import discover_models

    registry = Registry(db)
    try:
        if registry.current_graph_id() is None:
            save_graph(registry, graph, str(samples))
        faultyplugin.batches_encoded = 0
        os.environ["FAULTY_INTERRUPT_AFTER"] = str(
            -1 if interrupt_after is None else interrupt_after
        )
        try:
            label_models(
                registry,
                graph,
                samples,
                [discover_models()[GOOD]],
                device="cpu",
                progress=False,
                **kwargs,
            )
        except KeyboardInterrupt:
            return None
        finally:
            del os.environ["FAULTY_INTERRUPT_AFTER"]
        _, arrays, _ = registry.load_label(GOOD, graph.id)
        return {
            name: (array.dtype.str, array.shape, array.tobytes()) for name, array in arrays.items()
        }
    finally:
        registry.close()


def test_random_kills_and_chunk_sizes_end_in_the_clean_label(
    faulty_in_process, small_graph, tmp_path
):
    """Property: whatever batch each run is interrupted at, and whatever chunk size each run uses, the
    label published equals, byte for byte, a clean run's at the chunk size and depth of the run
    that completed it."""
    graph, samples = small_graph
    rng = np.random.default_rng(12)
    for trial in range(5):
        depth = [None, 3][trial % 2]
        db = tmp_path / f"trial{trial}.db"
        for run in range(
            3
        ):  # up to two interrupted runs at random batches, then one left to finish
            chunk = int(rng.integers(1, 13))
            interrupt = int(rng.integers(0, 8)) if run < 2 else None
            published = label_with(
                db, graph, samples, interrupt, chunk=chunk, depth=depth, batch_size=2
            )
            if published is not None:
                break
        clean = label_with(tmp_path / f"clean{trial}.db", graph, samples, chunk=chunk, depth=depth)
        assert published == clean, (trial, run, chunk, depth)
        if depth is not None:  # a fixed depth makes the label independent of the chunking too
            assert published == label_with(
                tmp_path / f"whole{trial}.db", graph, samples, depth=depth
            )


def test_a_saved_part_that_fits_but_is_damaged_is_never_published(
    faulty_in_process, small_graph, tmp_path, capsys
):
    graph, samples = small_graph
    db = tmp_path / "r.db"
    assert label_with(db, graph, samples, interrupt_after=2, chunk=5, batch_size=64) is None
    registry = Registry(db)
    part = registry.label_parts(GOOD, graph.id)[0]
    part["lists"] = part["lists"].copy()
    part["lists"][0] = len(graph.nodes) + 7  # its identity still fits; its content does not
    registry.save_label_part(GOOD, graph.id, 0, part)
    from mllzoo.labeling.driver import label_models
    from mllzoo.models.catalog import discover_models

    report = label_models(
        registry, graph, samples, [discover_models()[GOOD]], device="cpu", progress=False, chunk=5
    )
    assert report.labeled == [] and "a list holds a node index out of range" in report.failed[GOOD]
    assert "not published" in capsys.readouterr().err
    assert (
        GOOD not in registry.labeled_model_ids(graph.id)
        and registry.label_parts(GOOD, graph.id) == {}
    )
    registry.close()
    assert label_with(db, graph, samples, chunk=5) == label_with(
        tmp_path / "clean.db", graph, samples, chunk=5
    )


def test_validate_refuses_every_kind_of_inconsistent_label(
    faulty_in_process, small_graph, tmp_path
):
    graph, samples = small_graph
    label_with(
        tmp_path / "r.db", graph, samples
    )  # auto depth: the small graph lists all each image needs
    registry = Registry(tmp_path / "r.db")
    _, arrays, meta = registry.load_label(GOOD, graph.id)
    registry.close()
    n_images, n_nodes = len(graph.image_paths), len(graph.nodes)
    labels.validate(
        labels.Label.from_arrays(arrays, meta), n_images, graph.samples, n_nodes
    )  # the real one passes

    def broken(**changes) -> labels.Label:
        fields = {**{name: array.copy() for name, array in arrays.items()}, **changes}
        return labels.Label(
            fields["lists"], fields["lengths"], fields["rank"], changes.get("n_nodes", n_nodes)
        )

    lengths, rank, lists = arrays["lengths"], arrays["rank"], arrays["lists"]
    longer = lengths.copy()
    longer[np.argmax(lengths)] += 1
    need = labels.image_needs(n_images, graph.samples[:, 1], rank)
    moved = lengths.copy()  # one entry moved to an image that does not need it: the sum still fits
    moved[np.flatnonzero(lengths == need)[0]] += 1
    moved[np.flatnonzero(moved > 0)[-1]] -= 1
    unreadable = rank.copy()
    unreadable[np.flatnonzero(graph.samples[:, 1] == graph.samples[0, 1])[:1]] = -1
    cases = {
        "n_nodes": broken(n_nodes=n_nodes + 1),
        "lengths for": broken(lengths=lengths[:-1]),
        "rank for": broken(rank=rank[1:]),
        "add up to": broken(lengths=longer),
        "out of range": broken(
            lists=np.where(np.arange(len(lists)) == 0, n_nodes, lists).astype(lists.dtype)
        ),
        "a rank is out of range": broken(rank=np.full_like(rank, n_nodes)),
        "both readable and unreadable": broken(rank=unreadable),
        "longer than": broken(lengths=moved),
        "flat integer": broken(lists=lists.astype(np.float32)),
    }
    for what, label in cases.items():
        with pytest.raises(InvalidLabel, match=what if what != "n_nodes" else "nodes on a graph"):
            labels.validate(label, n_images, graph.samples, n_nodes)


def test_load_plugins_naming_pips_spelling_loads_it_and_an_unknown_name_warns(world):
    _, env = world
    picked = {**env, "MLLZOO_LOAD_PLUGINS": "mllzoo_plugin_tinyclip, no-such-plugin"}
    listed = run_cli("plugins", env=picked)
    assert listed.returncode == 0, listed.stderr
    assert "mllzoo-plugin-tinyclip" in listed.stdout
    warned = [line for line in listed.stderr.splitlines() if "no-such-plugin" in line]
    assert len(warned) == 1 and warned[0].startswith("Warning: MLLZOO_LOAD_PLUGINS names")
