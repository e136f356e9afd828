"""Label indexes: ``labels publish`` writes one, ``labels pull`` reads it over real HTTP from a server on
127.0.0.1 (tests/fixtures/labelserver.py) that serves ranges and misbehaves on request.

The published registry is a copy of the shipped one (eight minizoo labels on its real graph); every
command runs in-process through click's CliRunner."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from labelserver import LabelServer

from conftest import ROOT
from mllzoo.cli.main import cli

pytestmark = pytest.mark.slow  # real HTTP servers on 127.0.0.1, one per test

SMALL = "minizoo/vit-t4.patterns"  # the smallest label: what the fault tests pull
OTHER = "minizoo/resnet18-s.broad"
SMALL_FILE = "minizoo.vit-t4.patterns.e0fd3212768d.mllzoo-labels"
GRAPH = "e0fd3212768d"
PETS = ROOT / "examples" / "pets.txt"
CIFAR = ROOT / "benchmarks" / "data" / "mll-classnames" / "CIFAR100.txt"


def mllzoo(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def ok(result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def state(db: Path) -> list:
    """What a pull may change, as rows: equal states mean an unchanged registry."""
    with sqlite3.connect(db) as conn:
        return [
            conn.execute("select * from labels order by model_id").fetchall(),
            conn.execute("select * from models order by id").fetchall(),
            conn.execute(
                "select model_id, count(*), sum(length(entries)) from label_blocks group by model_id"
            ).fetchall(),
            conn.execute("select * from graphs").fetchall(),
        ]


def leftovers(downloads: Path) -> list[str]:
    """What a pull left in the download folder besides its (empty) lock files."""
    return sorted(p.name for p in downloads.iterdir() if p.suffix != ".lock")


@pytest.fixture(autouse=True)
def own_download_folder(tmp_path, monkeypatch):
    """Each test its own download folder, so no partial download of another test is resumed."""
    monkeypatch.setenv("MLLZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "downloads"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The shipped registry's copy and the index it published (all eight labels)."""
    root = tmp_path_factory.mktemp("published")
    shutil.copyfile(ROOT / "registry.db", root / "pub.db")
    ok(mllzoo("--registry", root / "pub.db", "labels", "publish", "-o", root / "site"))
    return root / "pub.db", root / "site"


@pytest.fixture(scope="module")
def served(published):
    with LabelServer(published[1]) as server:
        yield server


@pytest.fixture
def server(served):
    served.reset()
    yield served
    served.reset()


@pytest.fixture
def without_small(published, tmp_path):
    """A registry on the published graph that lacks the small label."""
    from mllzoo.store.registry import Registry

    path = tmp_path / "here.db"
    shutil.copyfile(published[0], path)
    registry = Registry(path, create=False)
    registry.remove_labels([SMALL], GRAPH)
    registry.close()
    return path


def site_copy(published, tmp_path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(published[1], site)
    return site


def edit_index(site: Path, change) -> None:
    index = json.loads((site / "index.json").read_text())
    change(index)
    (site / "index.json").write_text(json.dumps(index))


def relabeled(site: Path, source_model: str, as_model: str, out: Path) -> Path:
    """A valid label file of ``as_model`` holding ``source_model``'s label (its manifest resealed)."""
    import zipfile

    with zipfile.ZipFile(site / f"{source_model.replace('/', '.')}.{GRAPH}.mllzoo-labels") as old:
        members = {name: old.read(name) for name in old.namelist()}
    manifest = json.loads(members["manifest.json"])
    manifest["labels"][0]["model"]["id"] = as_model
    members["manifest.json"] = json.dumps(manifest).encode()
    members["manifest.sha256"] = hashlib.sha256(members["manifest.json"]).hexdigest().encode()
    with zipfile.ZipFile(out, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)
    return out


def blocks(db: Path, model_id: str) -> list:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "select node, ranks, lengths, entries from label_blocks where model_id = ? order by 1",
            [model_id],
        ).fetchall()


# publish -------------------------------------------------------------------------------------------


def test_publish_writes_a_self_describing_flat_folder(published):
    pub, site = published
    index = json.loads((site / "index.json").read_text())
    assert index["format"] == "mllzoo-label-index" and index["version"] == 1
    assert sorted(p.name for p in site.iterdir()) == sorted(
        ["index.json", f"{GRAPH}.mllzoo-graph"] + [e["file"] for e in index["labels"]]
    )
    with sqlite3.connect(pub) as conn:
        labeled = sorted(row[0] for row in conn.execute("select model_id from labels"))
        plugins = dict(conn.execute("select id, plugin from models"))
    assert [e["model"] for e in index["labels"]] == labeled
    for entry in index["labels"]:
        data = (site / entry["file"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["graph"] == GRAPH and entry["format"] == "ragged-topm-v1"
        assert entry["plugin"] == plugins[entry["model"]] and entry["plugin_version"] == "0.1.0"
        assert entry["metadata"]["license"] and "gflops" in entry["metadata"]
    (graph,) = index["graphs"]
    assert graph["id"] == GRAPH and graph["embedders"] == ["minilm"]
    assert (graph["nodes"], graph["edges"], graph["images"], graph["samples"]) == (
        2139,
        2229,
        11687,
        39885,
    )
    # the graph travels without images: no image bytes, only hashes and relative paths
    from mllzoo.graph.graphfile import read_graph_file

    read = read_graph_file(site / graph["file"])
    assert len(read.images) == 11687 and not any(Path(p).is_absolute() for _, p in read.images)
    assert (
        "source" not in read.meta
    )  # the publisher's sample folder stays on the publisher's machine


def test_publishing_again_adds_and_replaces_entries_and_keeps_the_others(published, tmp_path):
    pub, _ = published
    site = tmp_path / "site"
    ok(mllzoo("--registry", pub, "labels", "publish", "-o", site, SMALL))
    first = (site / SMALL_FILE).read_bytes()
    foreign = {
        "model": "other/model.x",
        "graph": "0123456789ab",
        "format": "ragged-topm-v1",
        "file": "other.model.x.0123456789ab.mllzoo-labels",
        "bytes": 3,
        "sha256": "0" * 64,
        "plugin": "other-plugin",
        "plugin_version": "1",
        "metadata": {},
        "created": "2026-01-01T00:00:00+00:00",
    }
    edit_index(site, lambda index: index["labels"].append(foreign))
    ok(mllzoo("--registry", pub, "labels", "publish", "-o", site, OTHER, SMALL))
    index = json.loads((site / "index.json").read_text())
    assert [(e["model"], e["graph"]) for e in index["labels"]] == [
        (OTHER, GRAPH),
        (SMALL, GRAPH),
        ("other/model.x", "0123456789ab"),
    ]
    assert foreign in index["labels"]
    assert (site / SMALL_FILE).read_bytes() == first  # the same label publishes the same bytes
    assert not [p for p in site.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_publishing_into_a_newer_index_or_an_unlabeled_model_writes_nothing(published, tmp_path):
    pub, _ = published
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.json").write_text(json.dumps({"format": "mllzoo-label-index", "version": 9}))
    one_line_error(
        mllzoo("--registry", pub, "labels", "publish", "-o", site), "newer", "upgrade mllzoo"
    )
    one_line_error(
        mllzoo("--registry", pub, "labels", "publish", "-o", tmp_path / "b", "minizoo/nope.x"),
        "not labeled",
    )
    assert [p.name for p in site.iterdir()] == ["index.json"] and not (tmp_path / "b").exists()


# pull: the whole way ------------------------------------------------------------------------------


@pytest.mark.slow  # a whole pull, and recommends on CIFAR-100 from both registries
def test_a_registry_pulled_from_nothing_recommends_exactly_as_the_publisher(
    published, server, tmp_path
):
    pub, _ = published
    new = tmp_path / "new" / "registry.db"
    report = json.loads(ok(mllzoo("--registry", new, "labels", "pull", server.url, "--json")))
    assert report["created"] is True and report["graph"] == GRAPH
    assert len(report["pulled"]) == 8 and report["skipped"] == report["refused"] == []
    for classes in (PETS, CIFAR):
        assert ok(mllzoo("--registry", new, "recommend", classes, "--json", "-k", "3")) == ok(
            mllzoo("--registry", pub, "recommend", classes, "--json", "-k", "3")
        )
    assert ok(mllzoo("--registry", new, "graph", "info", "--json")) == ok(
        mllzoo("--registry", pub, "graph", "info", "--json")
    )
    with sqlite3.connect(pub) as a, sqlite3.connect(new) as b:
        query = "select embedder, shape, data from node_embeddings"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
        query = "select model_id, node, ranks, lengths, entries from label_blocks order by 1, 2"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
        query = "select * from images order by idx"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    assert not list(new.parent.glob(".*"))  # the registry was built beside it and linked in

    # pulling again reads the index only: identical labels are skipped without a download
    server.log.clear()
    again = json.loads(ok(mllzoo("--registry", new, "labels", "pull", server.url, "--json")))
    assert again["pulled"] == [] and len(again["skipped"]) == 8
    assert [entry["path"] for entry in server.log] == ["index.json"]


def test_models_show_and_the_model_page_name_the_index_without_its_credentials(
    without_small, server
):
    url = server.url.replace("http://", "http://alice:s3cret@") + "index.json?token=abc"
    ok(mllzoo("--registry", without_small, "labels", "pull", url, SMALL))
    assert server.requested("index.json")[0]["authorization"].startswith("Basic ")
    clean = f"{server.url}index.json"
    text = ok(mllzoo("--registry", without_small, "models", "show", SMALL))
    assert f"pulled from:    {clean}" in text and "s3cret" not in text and "token" not in text
    card = json.loads(ok(mllzoo("--registry", without_small, "models", "show", SMALL, "--json")))
    assert card["label"]["origin"] == clean
    other = json.loads(ok(mllzoo("--registry", without_small, "models", "show", OTHER, "--json")))
    assert other["label"]["origin"] is None  # shipped, not pulled
    pytest.importorskip("datasette")
    import asyncio

    from datasette.app import Datasette

    page = asyncio.run(
        Datasette(immutables=[str(without_small)]).client.get(f"/-/mllzoo/model/{SMALL}")
    ).text
    assert f'<td id="label-origin">{clean}</td>' in page and "s3cret" not in page


def test_credentials_never_follow_a_redirect(without_small, server):
    server.rules[SMALL_FILE] = ("redirect", f"moved/{SMALL_FILE}")
    server.rules[f"moved/{SMALL_FILE}"] = ("redirect", SMALL_FILE + ".real")
    shutil.copyfile(server.root / SMALL_FILE, server.root / (SMALL_FILE + ".real"))
    try:
        url = server.url.replace("http://", "http://alice:s3cret@")
        ok(mllzoo("--registry", without_small, "labels", "pull", url, SMALL))
    finally:
        (server.root / (SMALL_FILE + ".real")).unlink()
    assert server.requested(SMALL_FILE)[0]["authorization"]
    assert server.requested(SMALL_FILE + ".real")[0]["authorization"] is None


def test_a_dropped_connection_keeps_what_came_and_the_next_pull_resumes_with_a_range(
    without_small, server, own_download_folder
):
    before = state(without_small)
    size = (server.root / SMALL_FILE).stat().st_size
    server.rules[SMALL_FILE] = ("drop", size // 2)
    one_line_error(
        mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL),
        SMALL_FILE,
        "run the same pull again to resume",
    )
    assert state(without_small) == before
    (partial,) = own_download_folder.glob("*.partial")
    assert partial.stat().st_size == size // 2
    server.rules.clear()
    report = json.loads(
        ok(mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL, "--json"))
    )
    assert report["pulled"] == [SMALL]
    assert server.requested(SMALL_FILE)[-1]["range"] == f"bytes={size // 2}-"
    assert leftovers(own_download_folder) == []  # imported: the download is removed


def test_a_server_that_ignores_the_range_gives_the_whole_file_again(
    without_small, server, own_download_folder
):
    size = (server.root / SMALL_FILE).stat().st_size
    server.rules[SMALL_FILE] = ("drop", size // 3)
    one_line_error(mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL))
    server.rules[SMALL_FILE] = ("no-range", None)
    ok(mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL))
    assert server.requested(SMALL_FILE)[-1]["range"] == f"bytes={size // 3}-"


def test_a_resumed_prefix_that_was_wrong_is_downloaded_again_from_the_start(
    without_small, server, own_download_folder
):
    data = (server.root / SMALL_FILE).read_bytes()
    own_download_folder.mkdir(parents=True)
    digest = hashlib.sha256(data).hexdigest()
    (own_download_folder / f"{digest}.partial").write_bytes(b"\0" * 1000)  # bad bytes kept earlier
    ok(mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL))
    ranges = [entry["range"] for entry in server.requested(SMALL_FILE)]
    assert ranges == ["bytes=1000-", None]


# pull: bad input, one line each, the registry unchanged -------------------------------------------


@pytest.mark.parametrize(
    "rules, extra, words",
    [
        ({"index.json": ("404", None)}, [], ["index.json", "HTTP 404"]),
        ({SMALL_FILE: ("404", None)}, [], [SMALL_FILE, "HTTP 404"]),
        ({"index.json": ("stall", None)}, ["--timeout", "0.5"], ["no answer within 0.5 s"]),
        ({SMALL_FILE: ("stall-after", 1000)}, ["--timeout", "0.5"], ["no answer within 0.5 s"]),
        ({"index.json": ("replace", b"<html>not an index</html>")}, [], ["is not JSON"]),
        (
            {"index.json": ("replace", json.dumps({"format": "mllzoo-label-index", "version": 2}))},
            [],
            ["version 2 is newer", "upgrade mllzoo"],
        ),
        ({SMALL_FILE: ("endless", None)}, [], ["larger than the", "stopped reading there"]),
        ({SMALL_FILE: ("replace", b"short")}, [], ["ended after 5 of its"]),
        (
            {"index.json": ("redirect", "r1")}
            | {f"r{i}": ("redirect", f"r{i + 1}") for i in range(9)},
            [],
            ["more than 5 redirects"],
        ),
        ({"index.json": ("redirect", "index.json")}, [], ["redirects"]),
    ],
    ids=[
        "index 404",
        "label 404",
        "index stalls",
        "label stalls halfway",
        "index not JSON",
        "newer index",
        "endless file",
        "short file",
        "redirect chain",
        "redirect loop",
    ],
)
def test_a_bad_server_is_one_line_and_changes_nothing(without_small, server, rules, extra, words):
    before = state(without_small)
    server.rules.update(
        {
            k: (kind, arg.encode() if isinstance(arg, str) and kind == "replace" else arg)
            for k, (kind, arg) in rules.items()
        }
    )
    result = mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL, *extra)
    one_line_error(result, *words)
    assert state(without_small) == before


def test_other_bytes_of_the_same_size_fail_the_sha256_and_are_not_kept(
    without_small, server, own_download_folder
):
    before = state(without_small)
    data = bytearray((server.root / SMALL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    server.rules[SMALL_FILE] = ("replace", bytes(data))
    one_line_error(
        mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL),
        "SHA-256 differs from the index",
    )
    assert state(without_small) == before and leftovers(own_download_folder) == []


def test_a_refused_connection_is_one_line(without_small):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    one_line_error(
        mllzoo("--registry", without_small, "labels", "pull", f"http://127.0.0.1:{port}/"),
        "connection refused",
    )


@pytest.fixture
def https_server(published, tmp_path, monkeypatch):
    """The index over TLS, with a certificate for 127.0.0.1 that this process alone trusts."""
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with LabelServer(published[1], tls=context) as server:
        yield server


def test_https_pulls_and_a_redirect_from_https_down_to_http_is_refused(
    without_small, https_server, server
):
    ok(mllzoo("--registry", without_small, "labels", "pull", https_server.url, SMALL))
    assert https_server.requested(SMALL_FILE)
    before = state(without_small)
    https_server.rules["index.json"] = ("redirect", f"{server.url}index.json")
    one_line_error(
        mllzoo("--registry", without_small, "labels", "pull", https_server.url, "--replace"),
        "from https to plain http: refused",
    )
    assert state(without_small) == before and not server.log  # the plain server was never asked


def test_lies_in_the_index_are_one_line_and_change_nothing(published, without_small, tmp_path):
    site = site_copy(published, tmp_path)
    before = state(without_small)

    def entry(index: dict) -> dict:
        return next(e for e in index["labels"] if e["model"] == SMALL)

    cases = [
        (lambda i: entry(i).update(bytes=entry(i)["bytes"] - 10), "larger than the"),
        (lambda i: entry(i).update(bytes=entry(i)["bytes"] + 10), "ended after"),
        (lambda i: entry(i).update(sha256="a" * 64), "SHA-256 differs"),
        (lambda i: entry(i).update(file="../pub.db"), "not a plain file name"),
        (
            lambda i: entry(i).update(
                file=f"{OTHER.replace('/', '.')}.{GRAPH}.mllzoo-labels",
                **{
                    k: v
                    for k, v in next(e for e in i["labels"] if e["model"] == OTHER).items()
                    if k in ("bytes", "sha256")
                },
            ),
            f"holds {OTHER}",
        ),
    ]
    original = (site / "index.json").read_text()
    for change, words in cases:
        (site / "index.json").write_text(original)
        edit_index(site, change)
        one_line_error(mllzoo("--registry", without_small, "labels", "pull", site, SMALL), words)
        assert state(without_small) == before


def test_a_folder_where_a_file_should_be_is_one_line(published, without_small, tmp_path):
    site = site_copy(published, tmp_path)
    (site / SMALL_FILE).unlink()
    (site / SMALL_FILE).mkdir()
    one_line_error(
        mllzoo("--registry", without_small, "labels", "pull", site.as_uri() + "/", SMALL),
        "is a folder where a file should be",
    )
    (site / "index.json").unlink()
    (site / "index.json").mkdir()
    one_line_error(
        mllzoo("--registry", without_small, "labels", "pull", site), "a folder where a file"
    )


def test_the_index_sha256_pins_an_index(published, without_small, server):
    digest = hashlib.sha256((published[1] / "index.json").read_bytes()).hexdigest()
    before = state(without_small)
    one_line_error(
        mllzoo(
            "--registry", without_small, "labels", "pull", server.url, "--index-sha256", "0" * 64
        ),
        "not the pinned",
    )
    assert state(without_small) == before and [e["path"] for e in server.log] == ["index.json"]
    ok(mllzoo("--registry", without_small, "labels", "pull", server.url, "--index-sha256", digest))


def test_an_entry_on_another_graph_is_skipped_with_one_warning(published, without_small, tmp_path):
    site = site_copy(published, tmp_path)

    def move(index: dict) -> None:
        for e in index["labels"]:
            if e["model"] != SMALL:
                e["graph"] = "0123456789ab"

    edit_index(site, move)
    result = mllzoo("--registry", without_small, "labels", "pull", site, "--json")
    report = json.loads(ok(result))
    assert report["pulled"] == [SMALL]
    assert len(report["refused"]) == 7 and all(
        r["graph"] == "0123456789ab" for r in report["refused"]
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning")]
    assert len(warnings) == 1 and "7 label(s)" in warnings[0] and "0123456789ab" in warnings[0]


def test_a_plugin_the_index_names_by_url_is_refused_and_nothing_offers_to_install_it(
    published, without_small, tmp_path
):
    site = site_copy(published, tmp_path)
    evil = "https://evil.example/plugin.whl"
    edit_index(
        site, lambda i: next(e for e in i["labels"] if e["model"] == SMALL).update(plugin=evil)
    )
    result = mllzoo("--registry", without_small, "labels", "pull", site, SMALL, "--json")
    report = json.loads(ok(result))
    assert report["pulled"] == [] and report["refused"][0]["model"] == SMALL
    assert "not a package name" in report["refused"][0]["reason"]
    assert "install" not in result.stdout + result.stderr


def _altered(nodes: list, images: list) -> None:
    nodes[0]["synset"] = "cat.n.01"  # another graph's content under this graph's id


def _escaping(nodes: list, images: list) -> None:
    images[0][1] = "../../home/someone/.ssh/id_rsa"  # not covered by the id: checked on its own


@pytest.mark.parametrize(
    "change, words",
    [(_altered, f"claims graph '{GRAPH}'"), (_escaping, "not a SHA-1 and a relative path")],
)
def test_a_graph_file_that_is_not_a_graph_creates_no_registry(published, tmp_path, change, words):
    """Members changed and their checksums resealed: only the graph's own checks can tell."""
    import zipfile

    site = site_copy(published, tmp_path)
    graph_file = site / f"{GRAPH}.mllzoo-graph"
    with zipfile.ZipFile(graph_file) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    nodes, images = json.loads(members["nodes.json"]), json.loads(members["images.json"])
    change(nodes, images)
    for name, content in (("nodes.json", nodes), ("images.json", images)):
        members[name] = json.dumps(content).encode()
        manifest["members"][name]["sha256"] = hashlib.sha256(members[name]).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(graph_file, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    edit_index(
        site,
        lambda i: i["graphs"][0].update(
            bytes=graph_file.stat().st_size,
            sha256=hashlib.sha256(graph_file.read_bytes()).hexdigest(),
        ),
    )
    new = tmp_path / "new.db"
    one_line_error(mllzoo("--registry", new, "labels", "pull", site), words)
    assert not new.exists() and not list(tmp_path.glob(".new.db*"))


# pull: what is already here ------------------------------------------------------------------------


def test_dry_run_lists_what_would_change_and_downloads_nothing(without_small, server, tmp_path):
    before = state(without_small)
    report = json.loads(
        ok(mllzoo("--registry", without_small, "labels", "pull", server.url, "--dry-run", "--json"))
    )
    assert report["dry_run"] is True and report["pulled"] == [SMALL]
    assert {s["model"] for s in report["skipped"]} == {
        e["model"] for e in json.loads((server.root / "index.json").read_text())["labels"]
    } - {SMALL}  # shipped labels, not pulled: a real pull compares them
    assert state(without_small) == before and [e["path"] for e in server.log] == ["index.json"]
    new = tmp_path / "new.db"
    text = ok(mllzoo("--registry", new, "labels", "pull", server.url, "--dry-run"))
    assert "would pull 8 label(s) into a new registry" in text and not new.exists()


def test_labels_already_here_are_compared_kept_or_replaced(published, server, tmp_path):
    """A label imported from a file is identical: skipped. A different label of the same model is kept
    unless --replace, which makes it the index's."""
    pub, site = published
    here = tmp_path / "here.db"
    shutil.copyfile(pub, here)
    report = json.loads(ok(mllzoo("--registry", here, "labels", "pull", server.url, "--json")))
    assert report["pulled"] == [] and {s["reason"] for s in report["skipped"]} == {
        "an identical label is already here"
    }
    wrong = relabeled(site, OTHER, SMALL, tmp_path / "wrong.mllzoo-labels")
    ok(mllzoo("--registry", here, "labels", "import", wrong, "--replace"))
    report = json.loads(
        ok(mllzoo("--registry", here, "labels", "pull", server.url, SMALL, "--json"))
    )
    assert report["pulled"] == [] and "--replace" in report["skipped"][0]["reason"]
    assert blocks(here, SMALL) == blocks(pub, OTHER)
    report = json.loads(
        ok(mllzoo("--registry", here, "labels", "pull", server.url, SMALL, "--replace", "--json"))
    )
    assert report["pulled"] == [SMALL] and blocks(here, SMALL) == blocks(pub, SMALL)


def test_a_newer_label_in_the_index_it_came_from_replaces_the_pulled_one(
    published, without_small, tmp_path
):
    pub, _ = published
    site = tmp_path / "site"
    ok(mllzoo("--registry", pub, "labels", "publish", "-o", site, SMALL, OTHER))
    ok(mllzoo("--registry", without_small, "labels", "pull", site, SMALL))
    newer = relabeled(site, OTHER, SMALL, site / SMALL_FILE)  # the publisher relabeled it
    data = newer.read_bytes()
    edit_index(
        site,
        lambda i: next(e for e in i["labels"] if e["model"] == SMALL).update(
            bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
        ),
    )
    report = json.loads(
        ok(mllzoo("--registry", without_small, "labels", "pull", site, SMALL, "--json"))
    )
    assert report["pulled"] == [SMALL] and blocks(without_small, SMALL) == blocks(pub, OTHER)


def test_labels_export_of_a_pulled_label_leaves_its_origin_behind(without_small, server, tmp_path):
    ok(mllzoo("--registry", without_small, "labels", "pull", server.url, SMALL))
    out = tmp_path / "again.mllzoo-labels"
    ok(mllzoo("--registry", without_small, "labels", "export", SMALL, "-o", out))
    assert out.read_bytes() == (server.root / SMALL_FILE).read_bytes()  # the very bytes published


def test_the_progress_bar_shows_on_a_terminal_only(server, capsys, tmp_path):
    from mllzoo.store import download

    data = (server.root / SMALL_FILE).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    download.fetch(server.url + SMALL_FILE, len(data), digest, tmp_path / "a")  # no terminal here
    assert capsys.readouterr().err == ""
    download.discard(digest)
    download.fetch(server.url + SMALL_FILE, len(data), digest, tmp_path / "b", progress=True)
    assert "0.00/511k" in capsys.readouterr().err  # the bar, sized from the index


def test_two_pulls_of_one_file_at_once_take_turns_and_both_get_it(server, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from mllzoo.store import download

    data = (server.root / SMALL_FILE).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    server.rules[SMALL_FILE] = ("slow", None)

    def one(name: str) -> bytes:
        path = download.fetch(server.url + SMALL_FILE, len(data), digest, tmp_path / name)
        download.discard(digest)  # as a pull does once it imported the file
        return path.read_bytes()

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(one, ["a", "b"])) == [data, data]
