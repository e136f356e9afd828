"""The SQLite registry: migrations, blobs, schema guards, path rules."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import sqlite_utils

from conftest import ROOT, SYNSETS, run_cli, write_images
from mllzoo import labels
from mllzoo.errors import MllzooError
from mllzoo.store import blobs
from mllzoo.store.registry import Registry, migrations


def test_migrations_create_expected_columns_and_are_idempotent(tmp_path):
    path = tmp_path / "r.db"
    Registry(path).close()
    db = sqlite_utils.Database(path)
    assert set(db["models"].columns_dict) == {
        "id",
        "family",
        "arch",
        "tag",
        "plugin",
        "plugin_version",
        "metadata",
        "first_seen",
    }
    assert set(db["labels"].columns_dict) == {
        "model_id",
        "graph_id",
        "format",
        "created",
        "meta",
        "token",
    }
    assert {"graph_id", "idx", "synset", "wnid", "caption", "depth", "parents"} <= set(
        db["nodes"].columns_dict
    )
    assert set(db["text_embeddings"].columns_dict) >= {
        "embedder",
        "text_hash",
        "dtype",
        "shape",
        "data",
    }
    applied = [m.name for m in migrations.applied(db)]
    Registry(path).close()
    assert [m.name for m in migrations.applied(db)] == applied
    assert db.journal_mode == "wal"


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int16).reshape(3, 4),
        np.random.default_rng(0).random((2, 5)).astype(np.float32),
        np.zeros((0, 3), np.int32),
    ],
)
def test_blobs_round_trip_little_endian(array):
    packed = blobs.pack(array)
    assert packed["dtype"].startswith("<") or packed["dtype"].startswith("|")
    assert np.array_equal(blobs.unpack(packed), array)


@pytest.mark.parametrize(
    "damage",
    [
        lambda row: {**row, "data": row["data"][:-2]},  # truncated
        lambda row: {
            **row,
            "data": bytes([row["data"][0] ^ 1]) + row["data"][1:],
        },  # one bit flipped
        lambda row: {**row, "shape": "[4, 3]"},  # same size, other shape
        lambda row: {**row, "dtype": "<u2"},  # same size, other dtype
        lambda row: {**row, "shape": "[5, 4]"},  # shape that does not fit
        lambda row: {**row, "dtype": "nonsense"},
        lambda row: {**row, "checksum": None},
        lambda row: {**row, "data": None},
    ],
)
def test_blobs_refuse_every_kind_of_damage(damage):
    packed = blobs.pack(np.arange(12, dtype=np.int16).reshape(3, 4))
    with pytest.raises(blobs.DamagedBlob):
        blobs.unpack(damage(packed))


def test_known_migration_names_are_what_a_new_registry_applies(tmp_path):
    from mllzoo.store.registry import MIGRATION_NAMES

    registry = Registry(tmp_path / "r.db")
    assert [m.name for m in migrations.applied(registry.db)] == MIGRATION_NAMES
    assert MIGRATION_NAMES[-1] == "m006_claim_leases"


def test_label_visible_only_when_saved(registry):
    samples = np.array([[0, 0], [1, 1]], np.int32)
    nodes = [{"idx": i, "synset": f"n{i}.n.01", "parents": "[]"} for i in range(2)]
    registry.save_graph("g", "g", {}, nodes, [("a", ""), ("b", "")], samples)
    registry.save_label_part("f/a.b", "g", 0, {"x": np.ones(3)})
    assert registry.labeled_model_ids("g") == set()
    assert list(registry.label_parts("f/a.b", "g")) == [0]
    label = labels.Label(
        np.array([1], np.int16), np.array([1, 0], np.int16), np.array([1, 0], np.int16), 2
    )
    registry.save_label("f/a.b", "g", labels.FORMAT, label.arrays(), {"n_nodes": 2})
    assert registry.labeled_model_ids("g") == {"f/a.b"}
    assert registry.label_parts("f/a.b", "g") == {}
    fmt, arrays, meta = registry.load_label("f/a.b", "g")
    assert fmt == labels.FORMAT and meta == {"n_nodes": 2}
    assert {name: a.tolist() for name, a in arrays.items()} == {
        "lists": [1],
        "lengths": [1, 0],
        "rank": [1, 0],
    }


def test_not_a_registry_and_newer_schema_are_one_line_errors(tmp_path):
    text = tmp_path / "text.db"
    text.write_text("hello")
    with pytest.raises(MllzooError, match="not an SQLite file"):
        Registry(text)
    other = tmp_path / "other.db"
    sqlite_utils.Database(other)["things"].insert({"a": 1})
    with pytest.raises(MllzooError, match="not an mllzoo registry"):
        Registry(other)
    newer = tmp_path / "newer.db"
    Registry(newer).close()
    sqlite_utils.Database(newer)["_sqlite_migrations"].insert(
        {"migration_set": "mllzoo", "name": "m999_future", "applied_at": "2030"}
    )
    with pytest.raises(MllzooError, match="newer mllzoo"):
        Registry(newer)
    result = run_cli("--registry", str(newer), "graph", "info")
    assert (
        result.returncode == 2
        and result.stderr.count("\n") == 1
        and "Traceback" not in result.stderr
    )


def test_claims_keep_two_processes_apart(registry, tmp_path):
    assert registry.claim("f/a.b", "g")
    other = Registry(registry.path)
    conn = sqlite3.connect(registry.path)
    # a live claim from another process on this host blocks; a dead one is taken over
    import os
    import subprocess
    import sys

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        conn.execute("update label_claims set pid = ?", [sleeper.pid])
        conn.commit()
        assert not other.claim("f/a.b", "g")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert other.claim("f/a.b", "g")
    assert conn.execute("select pid from label_claims").fetchall() == [
        (os.getpid(),)
    ]  # taken over by us
    other.close()
    conn.close()


def test_registry_path_rules(tmp_path, monkeypatch):
    from mllzoo.store.registry import default_registry_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLLZOO_REGISTRY", str(tmp_path / "env.db"))
    assert default_registry_path() == tmp_path / "env.db"
    monkeypatch.delenv("MLLZOO_REGISTRY")
    (tmp_path / "registry.db").write_bytes(b"")
    assert default_registry_path().name == "registry.db" and default_registry_path().parent == type(
        tmp_path
    )(".")


def test_opening_a_registry_again_in_one_process_keeps_the_first_connection_safe(tmp_path):
    """Reading the file outside SQLite would drop the first connection's locks (POSIX): another process
    closing the file would then take itself for the last reader and remove the WAL under it."""
    import subprocess
    import sys

    path = tmp_path / "r.db"
    first = Registry(path)
    first.set_setting("k", "1")
    Registry(path, create=False, write=False).close()
    reader = (
        f"import sqlite3; c = sqlite3.connect({str(path)!r}); "
        "c.execute('select * from settings').fetchall(); c.close()"
    )
    subprocess.run([sys.executable, "-c", reader], check=True)
    assert path.with_name("r.db-wal").exists()
    first.set_setting("k", "2")
    assert first.get_setting("k") == "2"
    first.close()


def test_the_shipped_registry_names_no_path_of_the_machine_that_built_it():
    conn = sqlite3.connect(ROOT / "registry.db")
    leaks = []
    for (table,) in conn.execute("select name from sqlite_master where type = 'table'").fetchall():
        for column in [row[1] for row in conn.execute(f"pragma table_info({table})")]:
            leaks += [
                (table, column, value)
                for (value,) in conn.execute(
                    f"select {column} from {table} where typeof({column}) = 'text' and ({column} like '/%' "
                    f"or {column} like '%\"/%' or {column} like '%:\\%')"
                ).fetchall()
            ]
    conn.close()
    assert not leaks, leaks[:3]


def test_a_registry_moved_with_its_samples_finds_them_where_it_now_is(tmp_path):
    """The sample folder is recorded relative to the registry, so a clone reads its own images."""
    import shutil

    from mllzoo.graph.concept_graph import graph_source

    built = tmp_path / "built"
    for seed, (name, color) in enumerate(list(SYNSETS.items())[:2]):
        write_images(built / "samples" / name, color, 2, seed)
    done = run_cli(
        "--registry", str(built / "r.db"), "graph", "build", "--samples", str(built / "samples")
    )
    assert done.returncode == 0, done.stderr
    moved = tmp_path / "moved"
    shutil.move(built, moved)
    registry = Registry(moved / "r.db")
    graph_id = registry.require_graph_id()
    assert registry.graph_meta(graph_id)["source"] == "samples"
    assert graph_source(registry, graph_id) == str(moved / "samples")
    registry.close()
