"""A newcomer's first answers: hints that work where the user is, and no error from an unrelated plugin.

The plugin set is the point here, so the CLI runs as real subprocesses with ``MLLZOO_LOAD_PLUGINS``.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import ROOT, run_cli
from helpers import PREFIX, cli_recommend, client_get, free_port, one_line_error, query, wait_for

REGISTRY = str(ROOT / "registry.db")  # the shipped demo registry: minizoo labels only
PETS = str(ROOT / "examples" / "pets.txt")


def renamed_copy(tmp_path, old: str, new: str):
    """The shipped registry copied, with ``old``'s label now under the id ``new`` (another family):
    stored anew, since a label's blocks are bound to its model."""
    import sqlite3

    from mllzoo.store.registry import Registry

    copy = tmp_path / "registry.db"
    with sqlite3.connect(REGISTRY) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    registry = Registry(copy)
    graph_id = registry.require_graph_id()
    registry.save_label(new, graph_id, *registry.load_label(old, graph_id))
    registry.remove_labels([old], graph_id)
    registry.close()
    return copy


@pytest.mark.slow
def test_an_unrelated_plugin_leaves_recommend_working_and_predict_names_a_working_step(tmp_path):
    from PIL import Image

    def recommend(plugins: str):
        return run_cli(
            "--registry",
            REGISTRY,
            "recommend",
            PETS,
            "--json",
            env={"MLLZOO_LOAD_PLUGINS": plugins},
            cwd=ROOT,
        )

    alone, unrelated = recommend(""), recommend("mllzoo-plugin-eva")
    assert unrelated.returncode == 0, unrelated.stderr
    assert json.loads(unrelated.stdout) == json.loads(alone.stdout)  # as with no plugin at all
    assert "none of the labeled models' plugins is installed" in unrelated.stderr
    assert "mllzoo install -e plugins/mllzoo-plugin-minizoo" in unrelated.stderr

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    for flags in ([], ["--include-uninstalled"]):  # either way one step that works, never a loop
        failed = run_cli(
            "--registry",
            REGISTRY,
            "predict",
            str(folder),
            "--classes",
            PETS,
            *flags,
            env={"MLLZOO_LOAD_PLUGINS": "mllzoo-plugin-eva"},
            cwd=ROOT,
        )
        message = one_line_error(failed, "mllzoo install -e plugins/mllzoo-plugin-minizoo")
        assert "--include-uninstalled" not in message


def install(args: list[str], tmp_path, monkeypatch):
    """``mllzoo install ARGS`` in-process, with pip looking in an empty folder instead of PyPI."""
    from mllzoo.cli.main import cli

    (tmp_path / "empty-index").mkdir(exist_ok=True)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty-index"))
    return CliRunner().invoke(cli, ["install", *args])


def test_install_of_a_package_the_index_lacks_names_the_clones_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = install(["mllzoo-plugin-eva>=99"], tmp_path, monkeypatch)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        "Error: no package mllzoo-plugin-eva>=99 on the package index (mllzoo's plugins are not "
        "published yet); this clone has it: mllzoo install -e plugins/mllzoo-plugin-eva"
    ], lines

    monkeypatch.chdir(tmp_path)  # outside the clone: the folder of the clone mllzoo runs from
    elsewhere = install(["mllzoo-plugin-eva>=99"], tmp_path, monkeypatch)
    assert f"mllzoo install -e {ROOT / 'plugins' / 'mllzoo-plugin-eva'}" in elsewhere.output

    unknown = install(["mllzoo-plugin-nowhere"], tmp_path, monkeypatch)
    assert unknown.exit_code == 2 and len(unknown.output.strip().splitlines()) == 1
    assert "no package mllzoo-plugin-nowhere on the package index" in unknown.output


def test_hints_in_listings_name_the_local_folder(monkeypatch):
    from mllzoo.plugin_source import install_command

    monkeypatch.chdir(ROOT)
    assert install_command(["mllzoo-plugin-hf", "someone-elses-plugin", "mllzoo-plugin-hf"]) == (
        "mllzoo install -e plugins/mllzoo-plugin-hf; mllzoo install someone-elses-plugin"
    )


@pytest.mark.slow
def test_the_web_form_offers_include_uninstalled_as_the_cli_does(tmp_path):

    pytest.importorskip("datasette")
    from datasette.app import Datasette

    # the models' favourite now comes from a plugin not installed
    copy = renamed_copy(tmp_path, "minizoo/convnext-xs.nature", "elsewhere/convnext-xs.nature")
    names = ["dog", "cat", "owl", "snake"]
    ds = Datasette(immutables=[str(copy)])
    for params, flags in (({}, []), ({"include_uninstalled": "1"}, ["--include-uninstalled"])):
        expected = cli_recommend(tmp_path, names, *flags, registry=copy)
        got = client_get(ds, f"{PREFIX}/recommend.json?{query(names, **params)}").text
        assert got == expected
    assert "elsewhere/convnext-xs.nature" in got  # the flag made a difference
    html = client_get(ds, f"{PREFIX}/recommend?{query(names, include_uninstalled='1')}").text
    assert 'name="include_uninstalled" value="1" checked' in html


def test_demo_models_are_the_minizoo_family_or_flagged_by_their_plugin():
    from mllzoo.selection.demo import demo_notice

    minizoo = {"minizoo/a.x": {}, "minizoo/b.y": {"extra": {}}}
    assert demo_notice(list(minizoo), minizoo).startswith("Demo registry:")
    real = {**minizoo, "open_clip/ViT-B-32.openai": {"extra": {"demo": False}}}
    assert demo_notice(list(real), real) is None  # one real model: the answer may be real advice
    flagged = {**minizoo, "toy/t.1": {"extra": {"demo": True}}}
    assert demo_notice(list(flagged), flagged) is not None
    assert demo_notice([], {}) is None


@pytest.mark.slow
def test_recommend_on_demo_labels_says_so_first_in_text_and_json(tmp_path):
    def recommend(registry, *flags):
        done = run_cli("--registry", str(registry), "recommend", PETS, *flags)
        assert done.returncode == 0, done.stderr
        return done.stdout

    text = recommend(REGISTRY)
    notice = json.loads(recommend(REGISTRY, "--json"))["notice"]
    assert notice.startswith("Demo registry:") and "mllzoo labels pull" in notice
    before_table = text[: text.index("score:")]
    assert " ".join(before_table.split()) == notice  # first, wrapped at the terminal's width

    mixed = renamed_copy(tmp_path, "minizoo/vit-t4.patterns", "elsewhere/vit-t4.patterns")
    assert recommend(mixed).startswith("score:")  # a real model among them: no notice
    assert "notice" not in json.loads(recommend(mixed, "--json", "--include-uninstalled"))


@pytest.mark.slow
def test_every_web_page_shows_the_demo_notice(tmp_path):
    pytest.importorskip("datasette")
    from datasette.app import Datasette

    ds = Datasette(immutables=[REGISTRY])
    overview = json.loads(client_get(ds, f"{PREFIX}.json").text)
    assert overview["notice"].startswith("Demo registry:")
    for page in (
        PREFIX,
        f"{PREFIX}/recommend?{query(['dog'])}",
        f"{PREFIX}/recommend",
        f"{PREFIX}/model/minizoo/convnext-xs.nature",
        f"{PREFIX}/concept/dog.n.01",
        f"{PREFIX}/compare?models=minizoo/convnext-xs.nature,minizoo/resnet18-s.broad",
    ):
        assert 'id="mllzoo-notice">Demo registry:' in client_get(ds, page).text, page
    document = json.loads(client_get(ds, f"{PREFIX}/recommend.json?{query(['dog'])}").text)
    assert document["notice"] == overview["notice"]

    mixed = renamed_copy(tmp_path, "minizoo/vit-t4.patterns", "elsewhere/vit-t4.patterns")
    plain = Datasette(immutables=[str(mixed)])
    assert 'id="mllzoo-notice"' not in client_get(plain, PREFIX).text


def test_home_page_figures_weigh_each_model_against_the_others():
    import numpy as np

    from mllzoo.web.zoo import weighed

    nan = np.nan
    counts = np.array([4, 5, 0, 3])
    tables = {
        "x/a.1": (np.array([0.5, 0.2, nan, 0.0]), counts),
        "x/b.1": (np.array([0.1, 0.4, nan, 0.0]), counts),
    }  # the last concept nobody gets right, the third has no samples: neither is weighed
    got = weighed(tables)
    assert got["x/a.1"] == {"best_on": 1, "share_of_best": 0.75, "rank": 1, "concepts": 2}
    assert got["x/b.1"] == {"best_on": 1, "share_of_best": 0.6, "rank": 2, "concepts": 2}


@pytest.mark.slow
def test_the_home_page_shows_rank_best_on_and_share_of_the_best():
    pytest.importorskip("datasette")
    from datasette.app import Datasette

    ds = Datasette(immutables=[REGISTRY])
    models = json.loads(client_get(ds, f"{PREFIX}.json").text)["models"]
    assert sorted(m["rank"] for m in models) == list(range(1, len(models) + 1))
    assert (
        sum(m["best_on"] for m in models) >= models[0]["concepts"] > 0
    )  # every weighed concept has a best
    html = client_get(ds, PREFIX).text
    assert "share of the best" in html and "most accurate on" in html and "guessing among" in html


def test_a_class_line_that_is_a_synset_id_or_wnid_matches_exactly_that_concept():
    from mllzoo.selection.recommend import recommend

    rec = recommend(["n02084071", "dog.n.01", "dog", "zzz.n.01"], registry=REGISTRY, cache=False)
    wnid, synset, word, unknown = rec.to_dict()["classes"]
    for row in (wnid, synset):
        assert row["exact"] == "dog.n.01" and not row["weak"]
        assert [(n["synset"], n["weight"], n["similarity"]) for n in row["nodes"]] == [
            ("dog.n.01", 1.0, 1.0)
        ]
    assert wnid["models"] == synset["models"]  # the same concept, the same scores
    assert "exact" not in word and len(word["nodes"]) > 1  # a word is matched by meaning
    assert "exact" not in unknown  # an id the graph lacks is just a name


@pytest.mark.slow  # loads a minizoo model (torch)
def test_predict_scores_class_folders_named_by_wnid(tmp_path):
    from PIL import Image

    for folder, color in (("n02084071", (200, 60, 60)), ("cat", (60, 200, 60))):
        (tmp_path / "images" / folder).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (32, 32), color).save(tmp_path / "images" / folder / f"{i}.png")
    (tmp_path / "images" / "cat" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "classes.txt").write_text("dog\ncat\n")
    done = run_cli(
        "--registry",
        REGISTRY,
        "predict",
        str(tmp_path / "images"),
        "--classes",
        str(tmp_path / "classes.txt"),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["unmatched_folders"] == {}
    assert {c["class"]: c["images"] for c in result["per_class"]} == {"dog": 2, "cat": 2}
    broken = next(row for row in result["predictions"] if row["path"].endswith("broken.png"))
    assert broken["label"] is None and broken["problem"] == "unreadable"


def test_an_image_gone_since_it_was_listed_is_not_found_not_unreadable(tmp_path):
    from mllzoo.reuse.predict import problem_of

    image = tmp_path / "a.png"
    image.write_bytes(b"not an image")
    assert problem_of(image) == "unreadable"
    image.unlink()
    assert problem_of(image) == "not found"


def test_the_package_has_a_version_and_the_candidates_list_its_old_name(tmp_path):
    from importlib.metadata import version

    import mllzoo
    from mllzoo.selection.recommend import recommend

    assert mllzoo.__version__ == version("mllzoo")
    rec = recommend(["dog", "cat"], registry=REGISTRY, cache=False)
    assert rec.model_ids is rec.candidates and set(rec.models) <= set(rec.candidates)
    html = rec._repr_html_()
    assert all(m in html for m in rec.models) and ">dog</span>" in html and "Demo registry" in html


def concepts_cli(*args: str):
    from mllzoo.cli.main import cli

    return CliRunner().invoke(cli, ["--registry", REGISTRY, "concepts", *args])


def test_concepts_finds_by_name_spelling_id_gloss_and_meaning():
    by_name = json.loads(concepts_cli("elephant", "--json").output)
    assert by_name[0]["synset"] == "elephant.n.01" and by_name[0]["matched_by"] == "name"
    assert by_name[0]["gloss"] and by_name[0]["samples"] > 0 and by_name[0]["wnid"] == "n02503517"
    assert len(by_name) == 10 and {"meaning"} <= {row["matched_by"] for row in by_name}
    misspelt = json.loads(concepts_cli("elefant", "-n", "3", "--json").output)
    assert misspelt[0]["name"] == "elephant" and misspelt[0]["matched_by"] == "spelling"
    by_id = json.loads(concepts_cli("n02084071", "--json").output)
    assert [row["synset"] for row in by_id] == ["dog.n.01"]  # an id finds its concept, nothing more
    in_gloss = json.loads(concepts_cli("roar", "--json").output)
    assert {"big_cat.n.01", "cat.n.01"} <= {
        r["synset"] for r in in_gloss if r["matched_by"] == "gloss"
    }
    text = concepts_cli("sunglasses", "-n", "2").output.splitlines()
    assert len(text) == 2 and text[0].startswith("sunglasses.n.01") and "samples" in text[0]
    empty = concepts_cli("  ")
    assert empty.exit_code == 2 and "give a word to search for" in empty.output


@pytest.mark.slow
def test_the_web_search_box_lists_what_mllzoo_concepts_lists():
    pytest.importorskip("datasette")
    from datasette.app import Datasette

    ds = Datasette(immutables=[REGISTRY])
    assert 'id="concept-search"' in client_get(ds, PREFIX).text
    found = json.loads(client_get(ds, f"{PREFIX}/concepts.json?q=elefant").text)
    assert found["concepts"] == json.loads(concepts_cli("elefant", "--json").output)
    html = client_get(ds, f"{PREFIX}/concepts?q=elefant").text
    assert (
        'data-synset="elephant.n.01"' in html and f'href="{PREFIX}/concept/elephant.n.01"' in html
    )
    refused = client_get(ds, f"{PREFIX}/concepts.json?q=")
    assert refused.status_code == 400 and "give a word" in json.loads(refused.text)["error"]
    assert client_get(ds, f"{PREFIX}/concepts").status_code == 200  # the bare box, no error


def cli_run(*args: str):
    from mllzoo.cli.main import cli

    return CliRunner().invoke(cli, ["--registry", REGISTRY, *args])


def refused(result, words: str) -> None:
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and words in result.output, result.output


def test_empty_answers_are_refused_in_one_line(tmp_path):
    from PIL import Image

    refused(
        cli_run("recommend", PETS, "--max-gflops", "0.001"),
        "no candidate model fits --max-gflops 0.001: the smallest, minizoo/mobilenetv3-s050.broad, "
        "needs 0.0053 GFLOPs",
    )
    refused(cli_run("recommend", PETS, "--max-gflops", "-1"), "--max-gflops must be a positive")
    refused(cli_run("recommend", PETS, "--max-gflops", "0"), "--max-gflops must be a positive")
    assert cli_run("recommend", PETS, "--max-gflops", "0.006", "--json").exit_code == 0
    refused(
        cli_run("models", "--hub", "mll48"), "no known model has hub 'mll48' (did you mean mll49?)"
    )
    refused(cli_run("models", "--family", "openclip"), "(did you mean open_clip?)")
    assert cli_run("models", "--family", "minizoo").exit_code == 0

    image = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(image)
    refused(cli_run("recommend", str(image)), "photo.png is a PNG image, not a text file")
    listed = tmp_path / "classes.txt"
    listed.write_text("dog\ncat\n")
    refused(
        cli_run("predict", str(listed), "--classes", str(listed)),
        "classes.txt is neither an image (.bmp",
    )


def test_a_utf16_class_file_is_still_called_utf16(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("dog\ncat\n", encoding="utf-16")
    refused(cli_run("recommend", str(path)), "looks like UTF-16 text")


@pytest.mark.slow  # a real server process
def test_serve_prints_each_note_once_and_exits_130_on_ctrl_c(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    pytest.importorskip("datasette")

    copy = renamed_copy(tmp_path, "minizoo/vit-t4.patterns", "elsewhere/vit-t4.patterns")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mllzoo", "--registry", str(copy), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}/-/mllzoo/recommend.json?classes=dog"
    wait_for(url, proc)
    for _ in range(3):
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.status == 200
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.decode().count("1 labeled model(s) left out") == 1, stderr


def test_charts_are_scaled_to_the_data_and_the_legend_lists_one_id_a_line():
    import re

    from mllzoo.web.svg import axis_top, bar_chart

    assert (
        axis_top([0.004, 0.028, None]) == 0.05 and axis_top([0.7]) == 1.0 and axis_top([]) == 0.01
    )
    ids = [
        "minizoo/mobilenetv3-s050.broad",
        "minizoo/convnext-xs.nature",
        "minizoo/vit-t4.patterns",
    ]
    svg = bar_chart([("animal", [0.028, 0.01, None])], ids, "t")
    widths = [
        float(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="([\d.]+)" height="14"', svg)
    ]
    assert max(widths) > 0.5 * 380  # 2.8% on a 0-5% axis: over half the bar, not a sliver
    assert ">5%</text>" in svg and ">100%</text>" not in svg
    legend_y = [int(y) for y in re.findall(r'<rect x="\d+" y="(\d+)" width="10"', svg)]
    assert len(set(legend_y)) == len(ids)  # one line each: long ids cannot overlap


@pytest.mark.slow
def test_web_errors_suggest_the_full_id_and_lists_link(tmp_path):
    pytest.importorskip("datasette")
    from datasette.app import Datasette

    ds = Datasette(immutables=[REGISTRY])
    concept = client_get(ds, f"{PREFIX}/concept/dog.json")
    assert concept.status_code == 404 and "(did you mean dog.n.01?)" in concept.text
    model = client_get(ds, f"{PREFIX}/model/convnext-xs.nature.json")
    assert model.status_code == 404 and "did you mean minizoo/convnext-xs.nature?" in model.text
    compare = client_get(ds, f"{PREFIX}/compare").text
    assert f'<a href="{PREFIX}/model/minizoo/vit-t4.patterns">' in compare
    assert f'<a href="{PREFIX}">home</a>' in compare


@pytest.mark.slow
def test_the_web_recommend_page_explains_the_score_and_suggests_spellings():
    pytest.importorskip("datasette")
    from datasette.app import Datasette

    ds = Datasette(immutables=[REGISTRY])
    html = client_get(ds, f"{PREFIX}/recommend?{query(['elefant', 'dog'])}").text
    assert "compared among the concepts of the whole class list" in html and "say little" in html
    assert f'did you mean <a href="{PREFIX}/concepts?q=elephant">elephant</a>?' in html


@pytest.mark.slow
def test_listings_name_the_install_command_that_works_in_the_clone(tmp_path):
    alone = run_cli("plugins", env={"MLLZOO_LOAD_PLUGINS": ""}, cwd=ROOT)
    assert "Try: mllzoo install -e plugins/mllzoo-plugin-openclip" in alone.stdout, alone.stdout
    import sqlite3

    copy = renamed_copy(tmp_path, "minizoo/vit-t4.patterns", "elsewhere/vit-t4.patterns")
    with sqlite3.connect(copy) as conn:  # a label whose plugin nobody recorded
        conn.execute(
            "update labels set meta = json_remove(meta, '$.plugin') "
            "where model_id = 'elsewhere/vit-t4.patterns'"
        )
    listed = run_cli(
        "--registry", str(copy), "labels", "list", env={"MLLZOO_LOAD_PLUGINS": ""}, cwd=ROOT
    ).stdout
    assert (
        "minizoo/resnet18-s.broad  plugin mllzoo-plugin-minizoo (not installed: mllzoo install -e "
        "plugins/mllzoo-plugin-minizoo)" in listed
    ), listed
    assert (
        "elsewhere/vit-t4.patterns  plugin ? (not installed, and no plugin recorded for it)"
        in listed
    )
