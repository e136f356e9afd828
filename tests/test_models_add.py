"""``mllzoo models add / remove``: a lab's own open_clip checkpoints (an architecture open_clip does not
ship, saved as .pt and .safetensors) added from the CLI, listed, labeled, used by predict, removed;
bad checkpoints and plugins without the describe hook refused in one line, the settings untouched."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from conftest import run_cli, write_images
from helpers import ok, one_line_error
from mllzoo_openclip.testing import TINY_VIT, custom_checkpoint, planted_checkpoint

OPENCLIP = {"MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-openclip"}
ARCH = "labvit"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab's checkpoints of its own architecture, a registry with a graph, a task folder."""
    root = tmp_path_factory.mktemp("lab")
    (root / "pt").mkdir()
    pt, config = custom_checkpoint(root / "pt", ARCH, TINY_VIT, suffix=".pt", seed=1)
    safetensors, _ = custom_checkpoint(root, ARCH, TINY_VIT, suffix=".safetensors", seed=2)
    for seed, (synset, color) in enumerate(
        [("dog.n.01", (200, 60, 60)), ("cat.n.01", (60, 200, 60))]
    ):
        write_images(root / "samples" / synset, color, 5, seed)
        write_images(root / "task" / synset.split(".")[0], color, 3, 10 + seed)
    (root / "classes.txt").write_text("dog\ncat\n")
    env = {**OPENCLIP, "MLLZOO_REGISTRY": str(root / "r.db")}
    ok(run_cli("graph", "build", "--samples", str(root / "samples"), env=env))
    return {"root": root, "pt": pt, "safetensors": safetensors, "config": config, "env": env}


def add(lab, model_id: str, checkpoint, *more: str):
    return run_cli(
        "models", "add", model_id, "--checkpoint", str(checkpoint), *more, env=lab["env"]
    )


def settings_file(user_config):
    return user_config / "mllzoo" / "config.json"


@pytest.mark.slow
def test_added_checkpoints_are_listed_labeled_used_and_removed(lab, user_config):
    env = lab["env"]
    added = ok(add(lab, f"open_clip/{ARCH}.epoch3", lab["pt"], "--config", str(lab["config"])))
    assert added.startswith(f"added open_clip/{ARCH}.epoch3 (1.7") and "GFLOPs" in added
    ok(add(lab, f"open_clip/{ARCH}.st", lab["safetensors"], "--config", str(lab["config"])))
    rows = {r["id"]: r for r in json.loads(ok(run_cli("models", "--json", env=env)))}
    mine = rows[f"open_clip/{ARCH}.epoch3"]
    assert mine["added"] and mine["installed"] and mine["plugin"] == "mllzoo-plugin-openclip"
    assert mine["params_m"] > 1 and mine["gflops"] > 0 and mine["extra"]["model_cfg"] == TINY_VIT
    assert not rows["open_clip/ViT-B-32.openai"]["added"]
    assert "added with `models add`" in ok(run_cli("models", "--family", "open_clip", env=env))
    shown = ok(run_cli("models", "show", f"open_clip/{ARCH}.epoch3", env=env))
    assert "installed" in shown and "parameters:" in shown and "GFLOPs:" in shown

    report = json.loads(
        ok(
            run_cli(
                "register", f"open_clip/{ARCH}.epoch3", f"open_clip/{ARCH}.st", "--json", env=env
            )
        )
    )
    assert sorted(report["labeled"]) == [f"open_clip/{ARCH}.epoch3", f"open_clip/{ARCH}.st"]
    labeled = json.loads(ok(run_cli("models", "--labeled", "--json", env=env)))
    assert {r["id"] for r in labeled} == {f"open_clip/{ARCH}.epoch3", f"open_clip/{ARCH}.st"}
    predicted = json.loads(
        ok(
            run_cli(
                "predict",
                str(lab["root"] / "task"),
                "--classes",
                str(lab["root"] / "classes.txt"),
                "--models",
                f"open_clip/{ARCH}.epoch3",
                "--json",
                env=env,
            )
        )
    )
    assert len(predicted["predictions"]) == 6

    assert "removed" in ok(run_cli("models", "remove", f"open_clip/{ARCH}.st", env=env))
    rows = {r["id"]: r for r in json.loads(ok(run_cli("models", "--json", env=env)))}
    assert rows[f"open_clip/{ARCH}.st"]["labeled"] and not rows[f"open_clip/{ARCH}.st"]["installed"]
    assert rows[f"open_clip/{ARCH}.epoch3"]["installed"]
    one_line_error(run_cli("register", f"open_clip/{ARCH}.st", env=env), "unknown model id")
    stored = json.loads(settings_file(user_config).read_text())
    assert list(stored["models"]) == [f"open_clip/{ARCH}.epoch3"]
    assert stored["models"][f"open_clip/{ARCH}.epoch3"]["extra"]["checkpoint"] == str(lab["pt"])


def test_a_local_dir_folder_is_added(lab, tmp_path):
    folder = tmp_path / "run7"
    folder.mkdir()
    (folder / "open_clip_pytorch_model.bin").write_bytes(lab["pt"].read_bytes())
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_VIT}))
    ok(add(lab, f"open_clip/{ARCH}.run7", f"local-dir:{folder}"))
    rows = {r["id"]: r for r in json.loads(ok(run_cli("models", "--json", env=lab["env"])))}
    assert rows[f"open_clip/{ARCH}.run7"]["source"] == str(folder / "open_clip_pytorch_model.bin")


def test_bad_checkpoints_are_refused_in_one_line_and_nothing_is_kept(lab, tmp_path, user_config):
    marker = tmp_path / "ran"
    evil = planted_checkpoint(tmp_path / "evil.pt", marker, "legacy")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(lab["safetensors"].read_bytes()[:1000])
    config = str(lab["config"])
    cases = [
        (add(lab, f"open_clip/{ARCH}.evil", evil, "--config", config), "never unpickled"),
        (add(lab, f"open_clip/{ARCH}.cut", truncated, "--config", config), "truncated or damaged"),
        (add(lab, f"open_clip/{ARCH}.nocfg", lab["pt"]), f"no architecture '{ARCH}'"),
        (add(lab, f"open_clip/{ARCH}.gone", tmp_path / "gone.pt"), "does not exist"),
        (
            add(lab, f"open_clip/{ARCH}.x", lab["pt"], "--config", str(tmp_path / "no.json")),
            "config",
        ),
        (add(lab, "nofamily/x.y", lab["pt"]), "no installed plugin offers family 'nofamily'"),
        (add(lab, "open_clip/ViT-B-32.openai", lab["pt"]), "already a known model"),
        (add(lab, "open_clip/bad.id.x", lab["pt"]), "malformed model id"),
        (run_cli("models", "remove", "open_clip/ViT-B-32.openai", env=lab["env"]), "was not added"),
    ]
    for result, words in cases:
        one_line_error(result, words)
    assert not marker.exists() and not settings_file(user_config).exists()


def test_a_plugin_without_the_describe_hook_says_so(tinyclip_site, tinyclip_dir, tmp_path):
    env = {"PYTHONPATH": str(tinyclip_site), "MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-tinyclip"}
    result = run_cli(
        "models",
        "add",
        "tinyclip/tiny-a.mine",
        "--checkpoint",
        str(tinyclip_dir / "tiny-a.pt"),
        env={**env, "MLLZOO_REGISTRY": str(tmp_path / "r.db")},
    )
    one_line_error(
        result,
        "plugin mllzoo-plugin-tinyclip (family tinyclip) cannot add checkpoints",
        "mllzoo_describe_model",
    )


def test_a_damaged_added_entry_is_one_warning_and_the_rest_stay(lab, user_config):
    ok(add(lab, f"open_clip/{ARCH}.good", lab["pt"], "--config", str(lab["config"])))
    data = json.loads(settings_file(user_config).read_text())
    data["models"]["open_clip/hand.edited"] = {"family": "open_clip", "arch": "hand", "gflops": -1}
    settings_file(user_config).write_text(json.dumps(data))
    result = run_cli("models", "--family", "open_clip", env=lab["env"])
    assert result.returncode == 0 and f"open_clip/{ARCH}.good" in result.stdout
    assert result.stderr.count("\n") == 1 and "open_clip/hand.edited is damaged" in result.stderr
    assert ok(run_cli("config", "get", "captioner", env=lab["env"])).strip() == "templates"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")
def test_ray_workers_get_an_added_model_from_the_driver(lab, tmp_path, monkeypatch):
    """The workers' own settings file is damaged: a worker that read it would fail, so labels made
    there prove that the spec (with its architecture) came from the driver."""
    import ray

    from mllzoo.graph.concept_graph import load_graph
    from mllzoo.labeling.driver import label_models
    from mllzoo.labeling.ray_executor import RayExecutor
    from mllzoo.store.registry import Registry
    from mllzoo.store.user_models import known_models

    ok(add(lab, f"open_clip/{ARCH}.ray", lab["safetensors"], "--config", str(lab["config"])))
    monkeypatch.setenv("MLLZOO_LOAD_PLUGINS", "mllzoo-plugin-openclip")
    entry = known_models()[f"open_clip/{ARCH}.ray"]
    workers = tmp_path / "worker-config"
    (workers / "mllzoo").mkdir(parents=True)
    (workers / "mllzoo" / "config.json").write_text("{damaged")
    saved = os.environ["XDG_CONFIG_HOME"]
    os.environ["XDG_CONFIG_HOME"] = str(workers)  # what the Ray processes inherit
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    finally:
        os.environ["XDG_CONFIG_HOME"] = saved
    try:
        db = tmp_path / "r.db"
        db.write_bytes((lab["root"] / "r.db").read_bytes())
        registry = Registry(db)
        built = load_graph(registry)
        report = label_models(
            registry,
            built,
            lab["root"] / "samples",
            [entry],
            device="cpu",
            progress=False,
            executor=RayExecutor(shard_images=4),
        )
        assert report.labeled == [f"open_clip/{ARCH}.ray"], report
        registry.close()
    finally:
        ray.shutdown()


def test_an_added_model_whose_plugin_is_not_loaded_is_listed_as_not_installed(lab):
    ok(add(lab, f"open_clip/{ARCH}.away", lab["pt"], "--config", str(lab["config"])))
    elsewhere = {**lab["env"], "MLLZOO_LOAD_PLUGINS": ""}  # as after uninstalling the plugin
    line = [
        line
        for line in ok(run_cli("models", env=elsewhere)).splitlines()
        if line.startswith(f"open_clip/{ARCH}.away ")
    ]
    assert line and "added with `models add`" in line[0] and "plugin not installed" in line[0]
    one_line_error(run_cli("register", f"open_clip/{ARCH}.away", env=elsewhere), "unknown model id")
    ok(run_cli("models", "remove", f"open_clip/{ARCH}.away", env=elsewhere))


def test_an_architecture_open_clip_lacks_named_in_the_environment_says_why_it_fails(lab):
    """Before ``models add``, this ended in "weights are not available" and open_clip's list of every
    architecture, cut mid-word."""
    env = {**lab["env"], "MLLZOO_OPENCLIP_CHECKPOINTS": f"{ARCH}.env={lab['pt']}"}
    result = run_cli("register", f"open_clip/{ARCH}.env", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"has no architecture '{ARCH}'" in result.stderr
    assert "mllzoo models add" in result.stderr
    assert "weights are not available" not in result.stderr and "RN50" not in result.stderr
