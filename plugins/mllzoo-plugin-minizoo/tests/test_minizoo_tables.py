"""The committed concept tables: well formed, large enough, and real WordNet synsets."""

from __future__ import annotations

import pytest

from mllzoo_minizoo.world.tables import read_csv


def all_synsets() -> set[str]:
    return {
        row["synset"]
        for name in ("concepts_emoji.csv", "concepts_clipart.csv", "concepts_extra.csv")
        for row in read_csv(name)
    }


def test_tables_cover_more_than_500_nodes():
    assert len(all_synsets()) >= 500


def test_task_classes_name_emoji_codes():
    rows = read_csv("tasks_emoji.csv")
    tasks = {row["task"] for row in rows}
    assert tasks == {"pets", "food", "vehicles", "expressions", "flags", "sports"}
    for row in rows:
        assert row["class"] and all(
            code.replace("-", "").isalnum() for code in row["codes"].split()
        )


def test_every_synset_is_in_wordnet():
    wordnet = pytest.importorskip("nltk.corpus").wordnet
    try:
        wordnet.ensure_loaded()
    except LookupError:
        pytest.skip("WordNet is not installed (make wordnet)")
    missing = []
    for name in sorted(all_synsets()):
        try:
            assert wordnet.synset(name).pos() == "n"
        except Exception:
            missing.append(name)
    assert not missing
