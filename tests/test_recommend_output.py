"""What a person reads: the weak-match flag, the legend, disambiguated concepts, --explain, notebook objects."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, run_cli
from mllzoo.selection.recommend import WEAK_MATCH, recommend

REGISTRY = ROOT / "registry.db"


@pytest.fixture(scope="module")
def rec():
    return recommend(
        ["apple", "mouse", "flibbertigrunk", "dog"], registry=REGISTRY, k=2, cache=False
    )


def test_json_says_which_classes_match_weakly_with_each_nodes_similarity(rec):
    data = rec.to_dict()
    weak = {row["name"]: row["weak"] for row in data["classes"]}
    assert weak == {"apple": False, "mouse": False, "flibbertigrunk": True, "dog": False}
    for row in data["classes"]:
        similarities = [node["similarity"] for node in row["nodes"]]
        assert similarities == sorted(similarities, reverse=True)
        assert row["weak"] == (similarities[0] < WEAK_MATCH)


def test_explain_names_the_runner_up_below_the_chosen(rec):
    unbudgeted = recommend(
        ["apple", "mouse", "flibbertigrunk", "dog"],
        registry=REGISTRY,
        k=2,
        max_models=None,
        cache=False,
    )
    for row in unbudgeted.to_dict(explain=True)["classes"]:
        runner = row["runner_up"]
        assert runner["id"] not in [m["id"] for m in row["models"]]
        assert runner["score"] <= min(m["score"] for m in row["models"])
        assert runner["outside_budget"] is False


def test_explain_says_when_only_the_model_budget_left_the_runner_up_out(rec):
    """At the default budget (two models for the whole list) a class's own best can be a third
    model: the runner-up then scores above a chosen one, and says why it is not chosen."""
    rows = rec.to_dict(explain=True)["classes"]
    assert len({m["id"] for row in rows for m in row["models"]}) <= 2
    flagged = [row for row in rows if row["runner_up"]["outside_budget"]]
    assert flagged, "the fixture's list no longer needs a third model: pick classes that do"
    for row in rows:
        runner = row["runner_up"]
        above = runner["score"] > min(m["score"] for m in row["models"])
        assert runner["outside_budget"] is above


def test_notebook_objects_are_short_and_escaped(rec):
    assert len(repr(rec)) < 300 and repr(rec).startswith("<Recommendation: 4 classes")
    assert "1 weak match" in repr(rec)
    html = rec._repr_html_()
    assert html.count("<tr>") == 5 and "(weak match)" in html
    escaped = recommend(["<b>cat</b>"], registry=REGISTRY, cache=False)._repr_html_()
    assert "<b>" not in escaped and "&lt;b&gt;cat&lt;/b&gt;" in escaped
    records = rec.to_records()
    assert len(records) == 8 and records[0]["class"] == "apple" and records[0]["rank"] == 1
    assert {r["class"] for r in records if r["weak"]} == {"flibbertigrunk"}


@pytest.mark.slow  # mllzoo CLI subprocesses
def test_text_output_has_a_legend_sets_weak_classes_apart_and_disambiguates(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("flibbertigrunk\nmouse\nelefant\n")
    done = run_cli("--registry", str(REGISTRY), "recommend", str(classes), "--explain", env={})
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "expected F1" in text and "compared among the concepts of the whole class list" in text
    assert "good here:" in text
    lines = text.splitlines()
    mouse = next(i for i, line in enumerate(lines) if line.startswith("mouse"))
    apart = next(i for i, line in enumerate(lines) if line.startswith("Weak matches:"))
    weak = [i for i, line in enumerate(lines) if line.startswith(("flibbertigrunk", "elefant"))]
    assert mouse < apart < min(weak)  # listed first in the file, shown after the matched ones
    row = " ".join(lines[mouse : mouse + 4])
    assert "mouse.n.01" in row  # two concepts named mouse: shown by synset id
    assert "say little" in " ".join(lines[apart : apart + 3])
    assert any("did you mean elephant?" in line for line in lines[weak[1] : weak[1] + 8])
    assert (
        sum("runner-up:" in line for line in lines) == 3
        and sum("similarity" in line for line in lines) >= 15
    )
    data = json.loads(
        run_cli("--registry", str(REGISTRY), "recommend", str(classes), "--json", env={}).stdout
    )
    assert [row["weak"] for row in data["classes"]] == [True, False, True]
    assert "runner_up" not in data["classes"][0]
    assert "elephant" in data["classes"][2]["suggestions"]
    assert "suggestions" not in data["classes"][1]  # only weak classes get them


@pytest.mark.slow  # mllzoo CLI subprocesses
def test_three_models_a_class_fit_the_terminal_and_the_summary_says_what_each_covers():
    done = run_cli(
        "--registry",
        str(REGISTRY),
        "recommend",
        str(ROOT / "examples" / "pets.txt"),
        *("-k", "3", "--max-models", "0"),
        env={"COLUMNS": "80"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    summary = lines[next(i for i, line in enumerate(lines) if "model(s) to load:" in line) :]
    covered = " ".join(summary)
    words = set(covered.replace(",", " ").split())
    assert {"bear", "turtle", "hamster"} <= words
    assert "(mllzoo-plugin-minizoo) for " in covered

    default = run_cli(
        "--registry", str(REGISTRY), "recommend", str(ROOT / "examples" / "pets.txt")
    )  # two models, each voting for every class: named once, not 24 names twice
    summary = default.stdout.split("model(s) to load:")[1].splitlines()[1:]
    assert len(summary) == 2, summary
    assert all(line.endswith("(mllzoo-plugin-minizoo) for all 24 classes") for line in summary)


def test_spelling_suggestions_come_from_concept_names_and_lemmas(rec):
    from mllzoo.graph.names import SpellingIndex

    spelling = SpellingIndex(rec.graph)
    assert spelling.suggest("elefant")[0] == "elephant"
    assert "sunglasses" in spelling.suggest("sunglases")
    assert "dog" not in spelling.suggest("dog")
    assert spelling.suggest("qqqqzzzz") == []


def test_the_spelling_index_answers_exactly_as_difflib_does(rec):
    """The fast bound must never drop a name difflib would suggest, nor reorder them."""
    import difflib
    import random

    from mllzoo.graph.names import SPELLING_CUTOFF, SpellingIndex, lemma

    names: dict[str, str] = {}
    for node in rec.graph.nodes:
        for word in (node.name, lemma(node.synset)):
            names.setdefault(word.lower(), node.name)
    spelling = SpellingIndex(rec.graph)
    rng = random.Random(0)
    queries = ["", "Éléphant", "a", "zz top", "dog"]
    for word in rng.sample(sorted(names), 150):
        typo = list(word)
        for _ in range(rng.randint(0, 3)):
            typo.insert(rng.randrange(len(typo) + 1), rng.choice("aeiouxyz -"))
        queries += ["".join(typo), word[::-1], word[: max(1, len(word) // 2)]]
    found = 0
    for query in queries:
        wanted = query.strip().lower()
        close = difflib.get_close_matches(wanted, list(names), n=4, cutoff=SPELLING_CUTOFF)
        expected = list(dict.fromkeys(names[w] for w in close if w != wanted))[:3]
        assert spelling.suggest(query) == expected, query
        found += bool(expected)
    assert found > 100  # the comparison is not between empty answers


@pytest.mark.slow  # mllzoo CLI subprocesses
def test_models_show_is_a_card_read_from_the_label():
    from mllzoo import labels
    from mllzoo.graph.concept_graph import load_graph
    from mllzoo.store.registry import Registry

    model_id = "minizoo/convnext-xs.nature"
    done = run_cli("--registry", str(REGISTRY), "models", "show", model_id, "--json", env={})
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert card["installed"] and card["labeled"] and card["plugin"] == "mllzoo-plugin-minizoo"
    assert card["metadata"]["license"] and card["label"]["samples"] == 39885
    registry = Registry(REGISTRY, create=False, write=False)
    graph = load_graph(registry, images=False)
    label = labels.Label.from_arrays(*registry.load_label(model_id, graph.id)[1:])
    synsets = [n.synset for n in graph.nodes]
    for concept in (
        card["strongest"] + card["weakest"]
    ):  # each figure recomputed from the label's ranks
        own = label.rank[graph.samples[:, 0] == synsets.index(concept["synset"])]
        assert concept["samples"] == len(own) and concept["accuracy"] == round(
            float((own == 0).mean()), 6
        )
    assert (
        card["strongest"][0]["accuracy"]
        >= card["strongest"][-1]["accuracy"]
        >= card["weakest"][0]["accuracy"]
    )
    registry.close()
    text = run_cli("--registry", str(REGISTRY), "models", "show", model_id, env={}).stdout
    assert "strongest concepts" in text and "licence:" in text
    typo = run_cli(
        "--registry", str(REGISTRY), "models", "show", "minizoo/convnext-xs.natur", env={}
    )
    assert typo.returncode == 2 and "did you mean minizoo/convnext-xs.nature?" in typo.stderr
    assert typo.stderr.count("\n") == 1


@pytest.mark.slow  # mllzoo CLI subprocesses
def test_registry_and_verbose_are_accepted_after_the_subcommand_and_max_models_zero_lifts_the_limit(
    tmp_path,
):
    from mllzoo.cli.main import hoist_global_options

    classes = str(ROOT / "examples" / "pets.txt")
    before = run_cli("--registry", str(REGISTRY), "recommend", classes, "--json", env={})
    after = run_cli(
        "recommend", classes, "--json", "--registry", str(REGISTRY), "-v", cwd=tmp_path, env={}
    )
    assert before.returncode == after.returncode == 0, after.stderr
    assert before.stdout == after.stdout and f"registry: {REGISTRY.resolve()}" in after.stderr
    zero = run_cli(
        "--registry", str(REGISTRY), "recommend", classes, "--max-models", "0", "--json", env={}
    )
    unlimited = recommend(classes, registry=REGISTRY, max_models=None, cache=False).to_dict()
    assert zero.returncode == 0 and json.loads(zero.stdout)["models"] == unlimited["models"]
    assert len(unlimited["models"]) > 2  # so the default's limit (2) is what the 0 lifted
    negative = run_cli(
        "--registry", str(REGISTRY), "recommend", classes, "--max-models", "-1", env={}
    )
    assert negative.returncode == 2 and "-1 is not in the range x>=0" in negative.stderr
    assert hoist_global_options(["labels", "import", "--", "--registry", "x"]) == [
        "labels",
        "import",
        "--",
        "--registry",
        "x",
    ]
    assert hoist_global_options(["recommend", "c", "--registry=r.db"]) == [
        "--registry=r.db",
        "recommend",
        "c",
    ]
