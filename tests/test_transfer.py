"""Labels that travel (export, import, remove, list) and which labeled models recommend and predict consider.

Every test works on a copy of the session's labeled registry, through real CLI subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path

from conftest import run_cli
from helpers import copy_registry, ok, one_line_error, other_graph_registry

MODELS = ["tinyclip/tiny-a.seed0", "tinyclip/tiny-b.seed0"]


def dump(env: dict) -> list[str]:
    """Every row of the registry, as SQL: equal dumps mean an unchanged registry."""
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as conn:
        return list(conn.iterdump())


def label_bytes(env: dict) -> dict[tuple[str, int], bytes]:
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as conn:
        return {
            (m, n): d
            for m, n, d in conn.execute(
                "select model_id, node, ranks || lengths || entries from label_blocks"
            )
        }


def rewrite(source: Path, target: Path, change) -> None:
    """A copy of a label file whose members pass through ``change(name, data) -> data``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, change(info.filename, old.read(info.filename)))


def resealed(manifest_change):
    """A member change that edits the manifest and writes the checksum that matches it (the manifest
    comes first in the archive)."""
    edited = {}

    def apply(name: str, data: bytes) -> bytes:
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest_change(manifest)
            edited["manifest"] = json.dumps(manifest).encode()
            return edited["manifest"]
        if name == "manifest.sha256":
            return hashlib.sha256(edited["manifest"]).hexdigest().encode()
        return data

    return apply


def test_export_remove_import_gives_identical_labels_and_recommendation(world, tmp_path):
    root, _ = world
    _, env = copy_registry(world, tmp_path)
    classes = str(root / "classes.txt")
    before_json = ok(run_cli("recommend", classes, "-k", "2", "--json", env=env))
    before_bytes = label_bytes(env)
    path = tmp_path / "tiny.mllzoo-labels"
    assert "exported 2 label(s)" in ok(
        run_cli("labels", "export", *MODELS, "-o", str(path), env=env)
    )

    assert "removed 2" in ok(run_cli("labels", "remove", *MODELS, env=env))
    assert label_bytes(env) == {}
    one_line_error(run_cli("recommend", classes, env=env), "no labeled models")

    assert "imported 2 label(s)" in ok(run_cli("labels", "import", str(path), env=env))
    assert label_bytes(env) == before_bytes  # byte-identical arrays
    assert ok(run_cli("recommend", classes, "-k", "2", "--json", env=env)) == before_json
    again = json.loads(ok(run_cli("labels", "import", str(path), "--json", env=env)))
    assert again == {"imported": [], "kept": MODELS}
    replaced = json.loads(
        ok(run_cli("labels", "import", str(path), "--replace", "--json", env=env))
    )
    assert replaced["imported"] == MODELS and label_bytes(env) == before_bytes

    listed = json.loads(ok(run_cli("labels", "list", "--json", env=env)))
    assert [(row["id"], row["plugin"], row["installed"]) for row in listed] == [
        (m, "mllzoo-plugin-tinyclip", True) for m in MODELS
    ]


def test_import_records_the_model_row_so_metadata_travels(world, tmp_path):
    _, env = copy_registry(world, tmp_path)
    path = tmp_path / "a.mllzoo-labels"
    ok(run_cli("labels", "export", MODELS[0], "-o", str(path), env=env))
    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as conn:
        row = conn.execute(
            "select family, arch, tag, plugin, metadata from models where id = ?", [MODELS[0]]
        ).fetchone()
    _, fresh = copy_registry(world, tmp_path, "fresh.db")
    with sqlite3.connect(
        fresh["MLLZOO_REGISTRY"]
    ) as conn:  # a registry that has the graph, not the model
        for table in ("labels", "label_blocks", "models"):
            conn.execute(f"delete from {table}")
    ok(run_cli("labels", "import", str(path), env={**fresh, "MLLZOO_LOAD_PLUGINS": ""}))
    with sqlite3.connect(fresh["MLLZOO_REGISTRY"]) as conn:
        (imported,) = conn.execute(
            "select family, arch, tag, plugin, metadata from models"
        ).fetchall()
    assert imported[:4] == row[:4] and json.loads(row[4])["params_m"] == 0.1
    # the metadata travels, but not this machine's path to the weights: only their file's name
    assert json.loads(imported[4]) == {
        **json.loads(row[4]),
        "source": Path(json.loads(row[4])["source"]).name,
    }
    listed = ok(run_cli("labels", "list", env={**fresh, "MLLZOO_LOAD_PLUGINS": ""}))
    assert "not installed: mllzoo install mllzoo-plugin-tinyclip" in listed


def test_refusals_leave_the_registry_unchanged(world, tmp_path):
    _, env = copy_registry(world, tmp_path)
    good = tmp_path / "good.mllzoo-labels"
    ok(run_cli("labels", "export", *MODELS, "-o", str(good), env=env))
    ok(run_cli("labels", "remove", MODELS[0], env=env))

    def flip_array(name: str, data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if name.endswith("rank.bin") else data

    def changed_gflops(name: str, data: bytes) -> bytes:
        return (
            data.replace(b'"params_m": 0.1', b'"params_m": 9.1')
            if name == "manifest.json"
            else data
        )

    files = {}
    rewrite(good, files.setdefault("tampered-array", tmp_path / "t1"), flip_array)
    rewrite(good, files.setdefault("tampered-manifest", tmp_path / "t2"), changed_gflops)
    rewrite(
        good, files.setdefault("future", tmp_path / "v2"), resealed(lambda m: m.update(version=2))
    )
    rewrite(
        good,
        files.setdefault("other-format", tmp_path / "fmt"),
        resealed(lambda m: m.update(format="zip")),
    )
    rewrite(
        good,
        files.setdefault("label-too-short", tmp_path / "short"),
        resealed(lambda m: m["labels"][0]["arrays"]["rank"].update(shape=[1])),
    )
    rewrite(
        good,
        files.setdefault("bad-dtype", tmp_path / "dt"),
        resealed(lambda m: m["labels"][0]["arrays"]["rank"].update(dtype="not-a-dtype")),
    )
    rewrite(
        good,
        files.setdefault("object-dtype", tmp_path / "obj"),
        resealed(lambda m: m["labels"][0]["arrays"]["rank"].update(dtype="|O")),
    )
    with zipfile.ZipFile(good) as archive:
        lists = archive.read("labels/0/lists.bin")
    assert len(lists) >= 2
    beyond = b"\xff\x7f" + lists[2:]  # node 32767: the graph has 5 concepts and their hypernyms
    reseal = resealed(
        lambda m: m["labels"][0]["arrays"]["lists"].update(
            sha256=hashlib.sha256(beyond).hexdigest()
        )
    )
    rewrite(
        good,
        files.setdefault("node-out-of-range", tmp_path / "node"),
        lambda name, data: beyond if name == "labels/0/lists.bin" else reseal(name, data),
    )
    files["truncated"] = tmp_path / "cut"
    files["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["not-a-zip"] = tmp_path / "junk"
    files["not-a-zip"].write_bytes(b"PK\x03\x04 but nothing else")
    expected = {
        "tampered-array": "checksum of labels/0/rank.bin does not match",
        "tampered-manifest": "checksum of manifest.json does not match",
        "future": "version 2 is newer than this mllzoo reads (1): upgrade mllzoo",
        "other-format": "is not an mllzoo label file",
        "label-too-short": "does not hold (1,)",
        "bad-dtype": "unreadable (TypeError",
        "object-dtype": "array dtype |O is not an integer type",
        "node-out-of-range": "tinyclip/tiny-a.seed0: its label does not fit graph",
        "truncated": "is not a readable mllzoo label file",
        "not-a-zip": "is not a readable mllzoo label file",
    }
    before = dump(env)
    for name, path in files.items():
        one_line_error(run_cli("labels", "import", str(path), env=env), expected[name])
        # all or nothing: a good file first does not get imported either
        one_line_error(run_cli("labels", "import", str(good), str(path), env=env), expected[name])
        assert dump(env) == before, name

    other = other_graph_registry(tmp_path, env)
    before_other = dump(other)
    one_line_error(run_cli("labels", "import", str(good), env=other), "labels were made on graph")
    assert dump(other) == before_other
    ok(run_cli("labels", "import", str(good), env=env))  # the untouched file still imports


def test_remove_and_export_refuse_unlabeled_ids(world, tmp_path):
    _, env = copy_registry(world, tmp_path)
    before = dump(env)
    one_line_error(
        run_cli("labels", "remove", MODELS[0], "tinyclip/nope.seed0", env=env),
        "not labeled on graph",
    )
    assert dump(env) == before  # the labeled one was not removed either
    one_line_error(
        run_cli("labels", "export", "tinyclip/nope.seed0", "-o", str(tmp_path / "x"), env=env),
        "not labeled on graph",
    )
    assert not (tmp_path / "x").exists()


def test_candidates_by_name_family_and_installed_plugin(world, tmp_path):
    root, _ = world
    _, env = copy_registry(world, tmp_path)
    classes = str(root / "classes.txt")
    only_b = json.loads(
        ok(run_cli("recommend", classes, "-k", "2", "--models", MODELS[1], "--json", env=env))
    )
    assert only_b["models"] == [MODELS[1]] and all(len(c["models"]) == 1 for c in only_b["classes"])
    one_line_error(
        run_cli("recommend", classes, "--models", "tinyclip/nope.seed0", env=env),
        "not labeled in this registry",
    )
    both = json.loads(
        ok(run_cli("recommend", classes, "-k", "2", "--family", "tinyclip", "--json", env=env))
    )
    assert set(both["models"]) == set(MODELS)
    one_line_error(
        run_cli("recommend", classes, "--family", "open_clip", env=env),
        "no labeled model of family 'open_clip'",
    )

    # with no model plugin at all (a recommend-only install) every label is a candidate, and predict
    # names the plugin to install
    no_plugin = {**env, "MLLZOO_LOAD_PLUGINS": ""}
    alone = run_cli("recommend", classes, "-k", "2", "--json", env=no_plugin)
    unrunnable = {m: "plugin not installed" for m in both["models"]}
    assert json.loads(ok(alone)) == {**both, "availability": unrunnable}
    assert "recommend-only install" in alone.stderr
    assert json.loads(
        ok(run_cli("recommend", classes, "--models", MODELS[0], "--json", env=no_plugin))
    )["models"] == [MODELS[0]]
    asked = run_cli(
        "recommend", classes, "-k", "2", "--include-uninstalled", "--json", env=no_plugin
    )
    assert json.loads(ok(asked)) == {**both, "availability": unrunnable}
    assert "mllzoo install mllzoo-plugin-tinyclip" in asked.stderr
    one_line_error(
        run_cli("predict", str(root / "task"), "--classes", classes, env=no_plugin),
        "mllzoo install mllzoo-plugin-tinyclip",
    )

    # with one of two labeled models uninstalled (its label imported from elsewhere), only the other is chosen
    path = tmp_path / "b.mllzoo-labels"
    ok(run_cli("labels", "export", MODELS[1], "-o", str(path), env=env))
    from mllzoo.store.registry import Registry

    registry = Registry(env["MLLZOO_REGISTRY"])  # blocks are bound to their model: store it anew
    graph_id = registry.require_graph_id()
    registry.save_label(
        "elsewhere/tiny-b.seed0", graph_id, *registry.load_label(MODELS[1], graph_id)
    )
    registry.remove_labels([MODELS[1]], graph_id)
    registry.close()
    mixed = run_cli("recommend", classes, "-k", "2", "--json", env=env)
    assert (
        json.loads(ok(mixed))["models"] == [MODELS[0]]
        and "1 labeled model(s) left out" in mixed.stderr
    )
    chosen = json.loads(
        ok(run_cli("recommend", classes, "-k", "2", "--include-uninstalled", "--json", env=env))
    )
    assert set(chosen["models"]) == {MODELS[0], "elsewhere/tiny-b.seed0"}
    predicted = json.loads(
        ok(run_cli("predict", str(root / "task"), "--classes", classes, "--json", env=env))
    )
    assert predicted["models"] == [MODELS[0]]
