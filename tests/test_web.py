"""The web pages (mllzoo/web, a Datasette plugin): every page, its JSON twin and every error through
Datasette's test client on the shipped registry, numbers compared with real `mllzoo recommend --json` runs;
then a real `mllzoo serve` driven by headless Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from html import escape
from html.parser import HTMLParser
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlparse

import numpy as np
import pytest

from conftest import ROOT, run_cli
from helpers import (
    PREFIX,
    cli_recommend,
    client_get,
    client_post,
    free_port,
    query,
    run_cli_without,
    wait_for,
)

pytest.importorskip(
    "datasette", reason="the web extra (pip install 'mllzoo[web]') is not installed"
)
pytestmark = pytest.mark.slow  # a few CLI runs, a server process and a browser

from datasette.app import Datasette  # noqa: E402

from mllzoo import labels  # noqa: E402
from mllzoo.evaluation.model_card import concept_accuracy, model_card  # noqa: E402
from mllzoo.graph.concept_graph import load_graph  # noqa: E402
from mllzoo.store.registry import Registry  # noqa: E402
from mllzoo.web.zoo import MAX_REQUEST_BYTES  # noqa: E402

REGISTRY = ROOT / "registry.db"
PETS = ROOT / "examples" / "pets.txt"
CIFAR = ROOT / "benchmarks" / "data" / "mll-classnames" / "CIFAR100.txt"
MODEL = "minizoo/convnext-xs.nature"
OTHER = "minizoo/resnet18-s.broad"


class Rows(HTMLParser):
    """The recommendation table as a person reads it: per class row, its models and their scores."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.errors: list[str] = []
        self._error = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "class-row" in (attrs.get("class") or ""):
            self.rows.append({"name": attrs["data-class"], "models": [], "nodes": []})
        elif attrs.get("data-model") and self.rows:
            self.rows[-1]["models"].append(
                {"id": attrs["data-model"], "score": float(attrs["data-score"])}
            )
        elif attrs.get("data-synset") and self.rows:
            self.rows[-1]["nodes"].append(attrs["data-synset"])
        self._error = attrs.get("class") == "mllzoo-error"

    def handle_data(self, data):
        if self._error and data.strip():
            self.errors.append(data.strip())
            self._error = False


def page_rows(html: str) -> Rows:
    parsed = Rows()
    parsed.feed(html)
    return parsed


def expected_rows(document: str) -> list[dict]:
    return [
        {"name": row["name"], "models": row["models"], "nodes": [n["synset"] for n in row["nodes"]]}
        for row in json.loads(document)["classes"]
    ]


@pytest.fixture(scope="module")
def ds():
    return Datasette(immutables=[str(REGISTRY)])


@pytest.fixture(scope="module")
def graph():
    registry = Registry(REGISTRY, create=False, write=False, immutable=True)
    yield registry, load_graph(registry, images=False)
    registry.close()


# found through Datasette's entry points ------------------------------------------------------------------


def test_datasette_finds_the_plugin_through_its_entry_point(ds):
    points = {ep.name: ep.value for ep in entry_points(group="datasette")}
    assert points.get("mllzoo") == "mllzoo.web"
    plugins = json.loads(client_get(ds, "/-/plugins.json").text)
    mine = next(
        p for p in plugins if p["name"] == "mllzoo"
    )  # the distribution that holds the entry point
    assert {"register_routes", "menu_links", "skip_csrf"} <= set(mine["hooks"]) and mine[
        "templates"
    ]


def test_the_index_lists_the_labeled_models_and_branches_with_links(ds, graph):
    registry, built = graph
    data = json.loads(client_get(ds, PREFIX + ".json").text)
    assert [m["id"] for m in data["models"]] == sorted(registry.labeled_model_ids(built.id))
    assert data["nodes"] == len(built.nodes) and len(data["branches"]) >= 2
    html = client_get(ds, PREFIX).text
    assert f'href="{PREFIX}/model/{MODEL}"' in html and f'href="{PREFIX}/recommend"' in html
    assert f'href="{PREFIX}/concept/{data["branches"][0]["synset"]}"' in html


# recommend: the numbers are the CLI's ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        (PETS, {"domain": "animal"}, ["--domain", "animal"]),
        (
            ["dog", "cat", "parrot", "sports car"],
            {"k": "2", "task": "photo classification"},
            ["-k", "2", "--task", "photo classification"],
        ),
        (CIFAR, {"max_models": "3"}, ["--max-models", "3"]),
        (PETS, {"k": "1", "max_models": "0"}, ["-k", "1", "--max-models", "0"]),
    ],
    ids=["pets-domain", "k2-task", "cifar100-max-models", "pets-no-model-limit"],
)
def test_recommend_json_is_exactly_the_cli_document(ds, tmp_path, case):
    classes, params, flags = case
    names = (
        [n for n in classes.read_text().splitlines() if n.strip() and not n.startswith("#")]
        if isinstance(classes, Path)
        else classes
    )
    expected = cli_recommend(tmp_path, classes, *flags)
    response = client_get(ds, f"{PREFIX}/recommend.json?{query(names, **params)}")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/json"
    )
    assert response.text == expected  # byte for byte: same numbers, same order, same rounding

    html = client_get(ds, f"{PREFIX}/recommend?{query(names, **params)}").text
    assert page_rows(html).rows == expected_rows(expected)
    document = json.loads(expected)
    for model_id in document["models"]:
        assert f'href="{PREFIX}/model/{model_id}"' in html
    first = document["classes"][0]["nodes"][0]["synset"]
    assert f'href="{PREFIX}/concept/{quote(first)}"' in html
    assert 'id="share-link"' in html or len(names) > 50


def test_the_forms_defaults_are_the_clis_and_a_shared_link_keeps_no_limit():
    from mllzoo.defaults import MAX_MODELS, K
    from mllzoo.web.zoo import RecommendInput

    blank = RecommendInput.parse({"classes": "dog\ncat", "k": "", "max_models": ""})
    assert (blank.k, blank.max_models) == (K, MAX_MODELS)
    assert blank.query() == {"classes": "dog\ncat"}  # defaults stay out of the link
    unlimited = RecommendInput.parse({"classes": "dog", "max_models": "0"})
    assert unlimited.max_models is None and unlimited.query()["max_models"] == "0"
    assert RecommendInput.parse(unlimited.query()) == unlimited
    three = RecommendInput.parse({"classes": "dog", "k": "3", "max_models": "3"})
    assert RecommendInput.parse(three.query()) == three


def test_recommend_shows_each_matched_concepts_gloss(ds, graph):
    _, built = graph
    html = client_get(ds, f"{PREFIX}/recommend?{query(['dog'])}").text
    gloss = next(n.definition for n in built.nodes if n.synset == "dog.n.01")
    assert escape(gloss) in html and f'title="{escape(gloss)}"' in html


def test_an_uploaded_class_file_gives_the_cli_document(ds, tmp_path):
    expected = cli_recommend(tmp_path, PETS, "--domain", "animal")
    body, content_type = multipart({"domain": "animal"}, ("pets.txt", PETS.read_bytes()))
    response = client_post(
        ds, f"{PREFIX}/recommend.json", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.text == expected
    page = client_post(
        ds,
        f"{PREFIX}/recommend",
        content=body,  # a browser that has Datasette's cookie
        headers={"content-type": content_type, "cookie": "ds_csrftoken=from-another-page"},
    )
    assert page.status_code == 200 and page_rows(page.text).rows == expected_rows(expected)
    assert (
        f"{PREFIX}/recommend?classes=bear%0Acat" in page.text
    )  # the link that gives the result again


def multipart(fields: dict[str, str], upload: tuple[str, bytes] | None) -> tuple[bytes, str]:
    boundary = "mllzoo-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    if upload:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="class_file"; filename="{upload[0]}"\r\n'
            f"Content-Type: text/plain\r\n\r\n".encode()
            + upload[1]
            + b"\r\n"
        )
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_the_empty_recommend_page_is_a_form_without_error(ds):
    html = client_get(ds, f"{PREFIX}/recommend").text
    assert (
        'id="recommend-form"' in html
        and 'name="class_file"' in html
        and 'id="mllzoo-error"' not in html
    )


@pytest.mark.parametrize(
    "params,status,words",
    [
        ({"classes": ""}, 400, ["no classes given"]),
        ({"classes": "# only a comment\n\n"}, 400, ["lists no classes"]),
        ({"classes": "dog\ncat\x1b[31m"}, 400, ["class 2", "U+001B", "plain text"]),
        ({"classes": "dog\ncat\ndog"}, 400, ["duplicate classes: dog"]),
        ({"classes": "dog", "k": "0"}, 400, ["k must be a whole number from 1 to 100"]),
        ({"classes": "dog", "k": "two"}, 400, ["k must be a whole number", "'two'"]),
        ({"classes": "dog", "max_models": "-1"}, 400, ["max models must be a whole number"]),
        ({"classes": "dog", "domain": "animal\x07"}, 400, ["the domain", "U+0007"]),
        ({"classes": "dog", "task": "x" * 201}, 400, ["the task is longer than 200 characters"]),
    ],
    ids=[
        "empty",
        "comments-only",
        "escape",
        "duplicate",
        "k0",
        "k-word",
        "max-models",
        "domain-bell",
        "long-task",
    ],
)
def test_bad_recommend_input_is_one_line_on_the_page_and_in_json(ds, params, status, words):
    response = client_get(ds, f"{PREFIX}/recommend.json?{urlencode(params)}")
    assert response.status_code == status
    error = json.loads(response.text)
    assert error["ok"] is False and error["status"] == status and "\n" not in error["error"]
    assert all(word in error["error"] for word in words), error["error"]
    page = client_get(ds, f"{PREFIX}/recommend?{urlencode(params)}")
    assert page.status_code == status and "Traceback" not in page.text
    assert page_rows(page.text).errors == [f"Error: {error['error']}"]


def test_control_characters_are_refused_as_the_cli_refuses_them(ds, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"dog\ncat\x1b[2J\n")
    cli = run_cli("--registry", str(REGISTRY), "recommend", str(bad), "--json")
    assert cli.returncode == 2
    body, content_type = multipart({}, ("bad.txt", bad.read_bytes()))
    web = json.loads(
        client_post(
            ds, f"{PREFIX}/recommend.json", content=body, headers={"content-type": content_type}
        ).text
    )["error"]
    cli_line = cli.stderr.strip().removeprefix("Error: ")
    assert web == cli_line.replace(str(bad), "uploaded file bad.txt")


def test_class_limit_size_cap_and_encoding_are_enforced(ds):
    many = "\n".join(f"class {i}" for i in range(5_001)).encode()
    body, content_type = multipart({}, ("many.txt", many))
    response = client_post(
        ds, f"{PREFIX}/recommend.json", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400 and "lists 5001 classes; at most 5000" in response.text
    huge, content_type = multipart({}, ("huge.txt", b"x" * (MAX_REQUEST_BYTES + 1)))
    response = client_post(
        ds, f"{PREFIX}/recommend.json", content=huge, headers={"content-type": content_type}
    )
    assert response.status_code == 413 and "larger than 1024 KB" in response.text
    response = client_get(ds, f"{PREFIX}/recommend.json?classes={'x' * 40_000}")
    assert response.status_code == 413 and "upload the class list as a file" in response.text
    latin, content_type = multipart({}, ("latin.txt", "caf\u00e9\n".encode("latin-1")))
    response = client_post(
        ds, f"{PREFIX}/recommend.json", content=latin, headers={"content-type": content_type}
    )
    assert response.status_code == 400 and "is not UTF-8 text (byte 3)" in response.text


def test_every_text_is_escaped(ds):
    html = client_get(
        ds, f"{PREFIX}/recommend?{query(['<script>alert(1)</script>', 'cat'], domain='<b>x</b>')}"
    ).text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    page = client_get(ds, f"{PREFIX}/concept/{quote('<img src=x onerror=alert(1)>')}")
    assert (
        page.status_code == 404 and "<img src=x" not in page.text and "&lt;img src=x" in page.text
    )


# model, concept, compare -----------------------------------------------------------------------------------


def branch_truth(registry, built, model_id: str, branches: list[dict]) -> list[float | None]:
    """Per branch, the share of its subtree's samples ranked first, computed here from the label."""
    _, arrays, meta = registry.load_label(model_id, built.id)
    graph = load_graph(registry, images=False)
    accuracy, counts = concept_accuracy(
        labels.Label.from_arrays(arrays, meta), graph.samples, len(graph.nodes)
    )
    children = {n.idx: [] for n in graph.nodes}
    for node in graph.nodes:
        for parent in node.parents:
            children[parent].append(node.idx)
    index = {n.synset: n.idx for n in graph.nodes}
    found = []
    for branch in branches:
        nodes, stack = set(), [index[branch["synset"]]]
        while stack:
            n = stack.pop()
            if n not in nodes:
                nodes.add(n)
                stack += children[n]
        nodes = sorted(nodes)
        total = counts[nodes].sum()
        found.append(
            round(float((np.nan_to_num(accuracy[nodes]) * counts[nodes]).sum() / total), 6)
            if total
            else None
        )
    return found


def chart_of(html: str) -> str:
    start = html.index('<svg xmlns="http://www.w3.org/2000/svg" class="mllzoo-chart"')
    return html[start : html.index("</svg>", start)]


def test_the_model_page_is_the_card_plus_accuracy_per_branch(ds, graph):
    registry, built = graph
    data = json.loads(client_get(ds, f"{PREFIX}/model/{MODEL}.json").text)
    card = model_card(registry, MODEL)
    assert {k: v for k, v in data.items() if k != "branches"} == json.loads(json.dumps(card))
    assert data["installed"] is True and data["metadata"]["license"]
    branches = data["branches"]
    assert [b["accuracy"] for b in branches] == branch_truth(registry, built, MODEL, branches)
    roots = {b["synset"] for b in branches}
    assert sum(b["nodes"] for b in branches) >= 0.9 * len(built.nodes) and len(roots) == len(
        branches
    )

    html = client_get(ds, f"{PREFIX}/model/{MODEL}").text
    svg = chart_of(html)
    assert svg.count("<rect") == sum(b["accuracy"] is not None for b in branches)
    assert all(b["name"] in svg for b in branches)
    for concept in card["strongest"] + card["weakest"]:
        assert f'href="{PREFIX}/concept/{quote(concept["synset"])}"' in html
    assert card["metadata"]["license"] in html and "installed" in html
    assert f"{PREFIX}/compare?models={quote(MODEL + ',')}" in html


def test_a_catalogued_model_without_a_label_has_a_card_that_says_how_to_label_it(ds):
    model_id = "open_clip/ViT-B-32.laion2b_s34b_b79k"
    data = json.loads(client_get(ds, f"{PREFIX}/model/{model_id}.json").text)
    assert data["labeled"] is False and data["installed"] is True and "branches" not in data
    html = client_get(ds, f"{PREFIX}/model/{model_id}").text
    assert f"mllzoo register {model_id}" in html and "mllzoo-chart" not in html.split("</style>")[1]


def test_one_selector_and_one_table_per_label_serve_every_request(ds, monkeypatch):
    import mllzoo.selection.recommend as _  # noqa: F401 - the module (``mllzoo.selection.recommend`` is the function)

    recommend_module = sys.modules["mllzoo.selection.recommend"]
    from mllzoo.store.registry import Registry as RegistryClass

    for path in (
        f"/recommend.json?{query(['dog'])}",
        f"/model/{MODEL}.json",
        "/concept/dog.n.01.json",
    ):
        client_get(
            ds, PREFIX + path
        )  # whatever came before: now the selector and every table are loaded
    made, loaded = [], []
    real_init, real_load = recommend_module.Selector.__init__, RegistryClass.load_label
    monkeypatch.setattr(
        recommend_module.Selector,
        "__init__",
        lambda self, *a, **kw: made.append(1) or real_init(self, *a, **kw),
    )
    monkeypatch.setattr(
        RegistryClass,
        "load_label",
        lambda self, m, g, *rest: loaded.append(m) or real_load(self, m, g, *rest),
    )
    for names in (["cat", "fox"], ["car", "bus", "truck"]):
        assert client_get(ds, f"{PREFIX}/recommend.json?{query(names)}").status_code == 200
    for path in (
        f"/model/{MODEL}.json",
        "/concept/dog.n.01.json",
        f"/compare.json?models={MODEL},{OTHER}",
        "/concept/cat.n.01.json",
        f"/model/{OTHER}.json",
        "/concept/cat.n.01.json",
    ):
        assert client_get(ds, PREFIX + path).status_code == 200
    assert made == []  # the selector loaded once is reused
    assert loaded in (
        [],
        [OTHER],
    )  # tables are kept: only OTHER's card, if not made before, reads its label


@pytest.mark.parametrize(
    "model_id,words",
    [
        (
            "minizoo/convnext-xs.natur",
            ["unknown model id", "did you mean minizoo/convnext-xs.nature?"],
        ),
        ("minizoo/no_dot", ["is not a model id"]),
    ],
)
def test_an_unknown_model_is_a_404_with_one_line(ds, model_id, words):
    for suffix in (".json", ""):
        response = client_get(ds, f"{PREFIX}/model/{model_id}{suffix}")
        assert response.status_code == 404 and "Traceback" not in response.text
        assert all(word in response.text for word in words)


def test_the_concept_page_has_gloss_parents_children_and_models_ranked(ds, graph):
    registry, built = graph
    data = json.loads(client_get(ds, f"{PREFIX}/concept/dog.n.01.json").text)
    node = next(n for n in built.nodes if n.synset == "dog.n.01")
    assert data["gloss"] == node.definition and data["name"] == node.name
    assert [p["synset"] for p in data["parents"]] == [built.nodes[p].synset for p in node.parents]
    assert sorted(c["synset"] for c in data["children"]) == sorted(
        n.synset for n in built.nodes if node.idx in n.parents
    )
    accuracies = [m["accuracy"] for m in data["models"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert {m["id"] for m in data["models"]} == registry.labeled_model_ids(built.id)
    for model in data["models"]:
        _, arrays, meta = registry.load_label(model["id"], built.id)
        graph_samples = load_graph(registry, images=False).samples
        accuracy, counts = concept_accuracy(
            labels.Label.from_arrays(arrays, meta), graph_samples, len(built.nodes)
        )
        assert (
            model["accuracy"] == round(float(accuracy[node.idx]), 6)
            and model["samples"] == counts[node.idx]
        )
    by_wnid = json.loads(client_get(ds, f"{PREFIX}/concept/{node.wnid}.json").text)
    assert by_wnid == data
    html = client_get(ds, f"{PREFIX}/concept/dog.n.01").text
    assert f'href="{PREFIX}/concept/{quote(data["parents"][0]["synset"])}"' in html
    assert f'href="{PREFIX}/model/{data["models"][0]["id"]}"' in html


def test_a_synset_with_an_apostrophe_is_reached_by_the_links_the_pages_write(ds):
    synset = "bull's_eye.n.02"
    html = client_get(ds, f"{PREFIX}/concept/{synset}").text
    assert "<h1>bull&#39;s eye" in html
    parent = json.loads(client_get(ds, f"{PREFIX}/concept/{quote(synset)}.json").text)["parents"][0]
    link = f'href="{PREFIX}/concept/{quote(parent["synset"])}"'
    siblings = client_get(ds, f"{PREFIX}/concept/{quote(parent['synset'])}").text
    assert link in html and f'href="{PREFIX}/concept/bull%27s_eye.n.02"' in siblings


def test_an_unknown_concept_is_a_404_with_did_you_mean(ds):
    response = client_get(ds, f"{PREFIX}/concept/dgo.n.01.json")
    assert response.status_code == 404
    assert (
        json.loads(response.text)["error"]
        == "no concept 'dgo.n.01' in this registry's graph (did you mean dog.n.01?)"
    )


def test_compare_puts_two_to_five_models_side_by_side(ds, graph):
    registry, built = graph
    data = json.loads(client_get(ds, f"{PREFIX}/compare.json?models={MODEL},{OTHER}").text)
    assert data["models"] == [MODEL, OTHER] and data["damaged"] == []
    for model_id in (MODEL, OTHER):
        assert [b["accuracy"][model_id] for b in data["branches"]] == branch_truth(
            registry, built, model_id, data["branches"]
        )
    html = client_get(ds, f"{PREFIX}/compare?models={MODEL},{OTHER}").text
    svg = chart_of(html)
    assert MODEL in svg and OTHER in svg and 'id="compare-table"' in html
    assert client_get(ds, f"{PREFIX}/compare").status_code == 200  # the empty form


@pytest.mark.parametrize(
    "models,status,words",
    [
        (MODEL, 400, ["name 2 to 5 different labeled models", "not 1"]),
        (f"{MODEL},{MODEL}", 400, ["different"]),
        (",".join([MODEL] * 6), 400, ["not 6"]),
        (f"{MODEL},minizoo/nope.x", 404, ["not labeled in this registry: minizoo/nope.x"]),
    ],
)
def test_bad_compare_input_is_one_line(ds, models, status, words):
    response = client_get(ds, f"{PREFIX}/compare.json?models={models}")
    assert response.status_code == status and all(w in response.text for w in words), response.text


# a damaged label, and a registry never written ----------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A copy of the shipped registry in which every block of MODEL's label fails its checksum."""
    path = tmp_path_factory.mktemp("damaged") / "registry.db"
    shutil.copyfile(REGISTRY, path)
    conn = sqlite3.connect(path)
    for node, data in conn.execute(
        "select node, entries from label_blocks where model_id = ? and length(entries) > 0", [MODEL]
    ).fetchall():
        data = bytearray(data)
        data[len(data) // 2] ^= 0x01
        conn.execute(
            "update label_blocks set entries = ? where model_id = ? and node = ?",
            [bytes(data), MODEL, node],
        )
    conn.commit()
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def test_a_damaged_label_is_one_line_and_skip_damaged_is_the_clis(damaged, tmp_path):
    before = hashlib.sha256(damaged.read_bytes()).hexdigest()
    ds = Datasette(immutables=[str(damaged)])
    names = ["dog", "cat", "parrot"]
    response = client_get(ds, f"{PREFIX}/recommend.json?{query(names)}")
    assert response.status_code == 409
    error = json.loads(response.text)["error"]
    assert MODEL in error and "checksum" in error and "skip damaged" in error and "\n" not in error
    page = client_get(ds, f"{PREFIX}/recommend?{query(names)}")
    assert page.status_code == 409 and len(page_rows(page.text).errors) == 1

    expected = cli_recommend(tmp_path, names, "--skip-damaged", registry=damaged)
    skipped = client_get(ds, f"{PREFIX}/recommend.json?{query(names, skip_damaged='1')}")
    assert skipped.status_code == 200 and skipped.text == expected
    assert json.loads(expected)["skipped"] == [MODEL]
    assert (
        "Skipped damaged label(s): " + MODEL
        in client_get(ds, f"{PREFIX}/recommend?{query(names, skip_damaged='1')}").text
    )

    card = client_get(ds, f"{PREFIX}/model/{MODEL}")
    assert card.status_code == 200 and 'id="damaged"' in card.text and "checksum" in card.text
    concept = json.loads(client_get(ds, f"{PREFIX}/concept/dog.n.01.json").text)
    assert MODEL not in [m["id"] for m in concept["models"]] and len(concept["damaged"]) == 1
    compare = json.loads(client_get(ds, f"{PREFIX}/compare.json?models={MODEL},{OTHER}").text)
    assert compare["models"] == [OTHER] and MODEL in compare["damaged"][0]
    index = json.loads(client_get(ds, PREFIX + ".json").text)
    assert "checksum" in next(m for m in index["models"] if m["id"] == MODEL)["damaged"]

    assert hashlib.sha256(damaged.read_bytes()).hexdigest() == before  # never written
    assert not Path(f"{damaged}-wal").exists() and not Path(f"{damaged}-shm").exists()


def test_replay_threads_open_the_registry_as_the_caller_did(graph, monkeypatch):
    """A big registry's labels are replayed on several threads, each with its own connection: for a served
    registry those must be read-only and immutable too, and give what one connection gives."""
    import mllzoo.selection.recommend as _  # noqa: F401 - the module (``mllzoo.selection.recommend`` is the function)

    recommend_module = sys.modules["mllzoo.selection.recommend"]

    registry, built = graph
    opened = []
    real_init = Registry.__init__
    monkeypatch.setattr(
        Registry, "__init__", lambda self, *a, **kw: opened.append(kw) or real_init(self, *a, **kw)
    )
    models = sorted(registry.labeled_model_ids(built.id))
    subset = np.array(
        [n.idx for n in built.nodes if n.synset in ("dog.n.01", "cat.n.01", "car.n.01")]
    )
    one = list(
        recommend_module.stored_replay(registry, built.id, len(built.nodes), models, workers=1)(
            subset
        )
    )
    two = list(
        recommend_module.stored_replay(registry, built.id, len(built.nodes), models, workers=2)(
            subset
        )
    )
    assert len(one) == len(models) and all(
        np.array_equal(a, b) for x, y in zip(one, two) for a, b in zip(x, y)
    )
    assert opened == [{"create": False, "write": False, "read_only": True, "immutable": True}] * 2


def test_a_folder_without_a_registry_says_so_in_one_line(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.close()
    response = client_get(
        Datasette(immutables=[str(other)]), f"{PREFIX}/recommend.json?classes=dog"
    )
    assert response.status_code == 404
    assert json.loads(response.text)["error"] == (
        "none of the served databases is an mllzoo registry (datasette registry.db)"
    )


def test_plain_datasette_on_a_registry_shows_the_pages_and_mllzoo_reads_it_read_only(tmp_path):
    """`datasette registry.db` (mutable, Datasette's own command): the plugin comes through the entry point and
    mllzoo's reader opens the file read-only (not immutable: someone may write it meanwhile)."""
    from mllzoo.web.zoo import zoo_for

    copy = tmp_path / "registry.db"
    shutil.copyfile(REGISTRY, copy)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "datasette", "serve", str(copy), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        body = wait_for(
            f"http://127.0.0.1:{port}{PREFIX}/recommend.json?{query(['dog', 'cat'])}", proc
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert body == cli_recommend(tmp_path, ["dog", "cat"])
    zoo = zoo_for(copy)
    assert zoo.run(lambda: (zoo.registry.writable, zoo.registry.immutable)).result() == (
        False,
        False,
    )


# the serve command ----------------------------------------------------------------------------------------


def test_serve_without_datasette_names_the_extra(tmp_path):
    result = run_cli_without("datasette", "--registry", str(REGISTRY), "serve")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == "Error: mllzoo serve needs the datasette package: pip install 'mllzoo[web]'"
    )


def test_serve_on_a_missing_registry_is_one_line(tmp_path):
    result = run_cli("--registry", str(tmp_path / "none.db"), "serve", "--port", str(free_port()))
    assert (
        result.returncode == 2
        and len(result.stderr.splitlines()) == 1
        and "registry not found" in result.stderr
    )


def test_serve_on_a_port_in_use_or_a_host_that_is_not_here_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--registry", str(REGISTRY), "serve", "--port", str(port))
    assert result.returncode == 2 and result.stderr.strip() == (
        f"Error: 127.0.0.1:{port} is in use: pick another with --port N (or --host)"
    )
    result = run_cli(
        "--registry", str(REGISTRY), "serve", "--host", "192.0.2.1", "--port", str(free_port())
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert (
        result.stderr.startswith("Error: 192.0.2.1:") and "cannot be listened on" in result.stderr
    )


def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses listening on ``port`` (from /proc/net/tcp: state 0A is LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mllzoo serve` on the shipped registry, on a free port of 127.0.0.1 (the default host)."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mllzoo",
                "--registry",
                str(REGISTRY),
                "serve",
                "--port",
                str(port),
            ],
            stdout=err,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + PREFIX, proc)
    except BaseException:
        print(log.read_text())
        raise
    yield url, port, log
    proc.terminate()
    proc.wait(timeout=30)


def test_serve_binds_to_localhost_and_answers_the_cli_document(server, tmp_path):
    url, port, log = server
    assert listening_addresses(port) == {"127.0.0.1"}
    assert f"read-only at http://127.0.0.1:{port}/-/mllzoo" in log.read_text()
    names = ["dog", "cat", "goldfish"]
    with urllib.request.urlopen(
        f"{url}{PREFIX}/recommend.json?{query(names, domain='animal')}", timeout=60
    ) as r:
        assert r.read().decode() == cli_recommend(tmp_path, names, "--domain", "animal")


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(
            f"the browser test needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): "
            f"bash .ci/system-packages installs them"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--disable-gpu",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def rendered_rows(driver) -> list[dict]:
    from selenium.webdriver.common.by import By

    rows = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "#recommendation tr.class-row"):
        models = [
            {
                "id": div.get_attribute("data-model"),
                "score": float(div.get_attribute("data-score")),
                "text": div.text,
            }
            for div in tr.find_elements(By.CSS_SELECTOR, "div.model")
        ]
        rows.append(
            {
                "name": tr.find_element(By.CSS_SELECTOR, "td.class-name").text.removesuffix(
                    " (weak match)"
                ),
                "models": models,
                "nodes": [
                    d.get_attribute("data-synset")
                    for d in tr.find_elements(By.CSS_SELECTOR, "div.concept")
                ],
            }
        )
    return rows


def test_a_person_recommends_then_opens_a_model_and_a_concept_in_chromium(
    server, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = server
    wait = WebDriverWait(browser, 90)
    names = ["dog", "cat", "parrot", "goldfish", "horse", "sports car"]
    browser.get(f"{url}{PREFIX}/recommend")
    browser.find_element(By.ID, "classes").send_keys("\n".join(names))
    browser.find_element(By.NAME, "domain").send_keys("animal")
    browser.find_element(By.ID, "recommend-submit").click()
    wait.until(seen.presence_of_element_located((By.ID, "recommendation")))
    shared = parse_qs(
        urlparse(browser.current_url).query
    )  # the URL carries the input: a result can be shared
    assert shared["classes"][0].splitlines() == names and shared["domain"] == ["animal"]
    expected = json.loads(cli_recommend(tmp_path, names, "--domain", "animal"))
    shown = rendered_rows(browser)
    assert [row["name"] for row in shown] == names
    for row, truth in zip(shown, expected["classes"]):
        assert [{"id": m["id"], "score": m["score"]} for m in row["models"]] == truth["models"]
        assert [m["text"] for m in row["models"]] == [
            f"{m['id']} ({m['score']:.3f})" for m in truth["models"]
        ]
        assert row["nodes"] == [n["synset"] for n in truth["nodes"]]
    browser.save_screenshot(str(tmp_path / "recommend.png"))
    if os.environ.get(
        "MLLZOO_SCREENSHOT"
    ):  # the README's picture: MLLZOO_SCREENSHOT=docs/web-recommend.png
        browser.set_window_size(1280, 1240)
        browser.save_screenshot(os.environ["MLLZOO_SCREENSHOT"])

    chosen = expected["classes"][0]["models"][0]["id"]
    browser.find_element(By.CSS_SELECTOR, f'#recommendation a[href$="/model/{chosen}"]').click()
    wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, "svg.mllzoo-chart")))
    assert browser.find_element(By.TAG_NAME, "h1").text == chosen
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.mllzoo-chart rect")
    assert bars and all(bar.size["width"] >= 0 for bar in bars)
    browser.save_screenshot(str(tmp_path / "model.png"))

    link = browser.find_element(By.CSS_SELECTOR, 'table.mllzoo-table a[href*="/concept/"]')
    synset = link.get_attribute("href").rsplit("/", 1)[1]
    link.click()
    wait.until(seen.presence_of_element_located((By.ID, "gloss")))
    with urllib.request.urlopen(f"{url}{PREFIX}/concept/{synset}.json", timeout=60) as r:
        concept = json.loads(r.read())
    assert browser.find_element(By.ID, "gloss").text == concept["gloss"]
    ranked = [
        a.text for a in browser.find_elements(By.CSS_SELECTOR, "#concept-models td:first-child a")
    ]
    assert ranked == [m["id"] for m in concept["models"]]
    browser.save_screenshot(str(tmp_path / "concept.png"))
    for name in ("recommend.png", "model.png", "concept.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_person_uploads_a_class_file_in_chromium(server, browser, tmp_path):
    """Through the browser's own multipart POST, sent with the cookies Datasette set (so asgi-csrf looks at it
    unless the plugin's skip_csrf says this POST needs no token)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = server
    browser.get(f"{url}{PREFIX}/recommend")
    browser.find_element(By.CSS_SELECTOR, '#recommend-form input[name="class_file"]').send_keys(
        str(PETS)
    )
    browser.find_element(By.NAME, "domain").send_keys("animal")
    browser.find_element(By.ID, "upload-submit").click()
    try:
        WebDriverWait(browser, 90).until(
            seen.presence_of_element_located((By.ID, "recommendation"))
        )
    except Exception:
        pytest.fail(
            f"no recommendation after the upload: {browser.find_element(By.TAG_NAME, 'body').text[:500]}"
        )
    expected = json.loads(cli_recommend(tmp_path, PETS, "--domain", "animal"))
    assert browser.find_element(By.NAME, "domain").get_attribute("value") == "animal"
    assert [
        {"name": r["name"], "models": [{"id": m["id"], "score": m["score"]} for m in r["models"]]}
        for r in rendered_rows(browser)
    ] == [{"name": r["name"], "models": r["models"]} for r in expected["classes"]]
