"""Reuse on hand-built inputs: the prompt sets, the evidence-weighted votes (exact expected sums),
the balanced reuse on hand-built probabilities, and the paper's reuse (``reuse="paper"``) giving the
MLL paper's predictions exactly."""

from __future__ import annotations

import numpy as np
import pytest

from mllzoo.errors import MllzooError
from mllzoo.reuse.ensemble import (
    REUSE_METHODS,
    balance_classes,
    class_prompts,
    combine,
    reuse_method,
    vote_weights,
)


def test_paper_prompts_are_the_photo_template_and_its_domain_form():
    assert class_prompts(["golden_retriever"], "animal") == [
        ["a photo of a golden retriever.", "a photo of a golden retriever, a type of animal."]
    ]
    assert class_prompts(["dog"], None) == [["a photo of a dog."]]


def test_described_prompts_add_the_descriptions_once_each_in_order():
    descriptions = [["dog", "a photo of a dog.", "dog which is a domestic canine"]]
    assert class_prompts(["dog"], "animal", "descriptions", descriptions) == [
        [
            "a photo of a dog.",
            "a photo of a dog, a type of animal.",
            "dog",
            "dog which is a domestic canine",
        ]
    ]
    concepts = class_prompts(["dog"], None, "concepts", descriptions, ["puppy which is young"])
    assert concepts == [
        ["a photo of a dog.", "dog", "dog which is a domestic canine", "puppy which is young"]
    ]


def test_unknown_prompt_set_and_reuse_are_user_errors():
    with pytest.raises(MllzooError, match="unknown prompt set 'captions'"):
        class_prompts(["dog"], None, "captions")
    with pytest.raises(MllzooError, match="unknown reuse 'vote': use paper, described, evidence"):
        reuse_method("vote")
    assert reuse_method("paper").power == 0 and reuse_method("paper").prompts == "paper"
    assert set(REUSE_METHODS) == {"paper", "described", "evidence"}
    assert reuse_method("evidence").power == 1 and reuse_method("described").power == 0


def test_vote_weights_are_the_score_to_the_power_where_chosen():
    scores = np.array([0.5, 0.2, -0.1, 0.3])
    chosen = np.array([True, False, True, True])
    assert vote_weights(scores, chosen, 2.0).tolist() == [0.25, 0.0, 0.0, 0.09]
    assert vote_weights(scores, chosen, 1.0).tolist() == [0.5, 0.0, 0.0, 0.3]
    assert vote_weights(scores, chosen, 0.0).tolist() == [1.0, 0.0, 1.0, 1.0]  # the paper's mask


def test_balancing_gives_each_class_an_equal_share_of_the_images():
    # a model that leans toward class 0 gives it every image; balanced, the two images with the most
    # class-1 evidence (ratios 0.67 and 0.43 against 0.11 and 0.25) go to class 1
    leaning = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.7, 0.3]])
    balanced = balance_classes(leaning)
    assert leaning.argmax(axis=1).tolist() == [0, 0, 0, 0]
    assert balanced.argmax(axis=1).tolist() == [0, 0, 1, 1]
    assert balanced.sum(axis=1) == pytest.approx(np.ones(4))
    assert balanced.sum(axis=0) == pytest.approx([2.0, 2.0], abs=1e-3)
    already = np.array([[0.7, 0.3], [0.3, 0.7]])  # already balanced: unchanged
    assert balance_classes(already) == pytest.approx(already)


def test_balancing_survives_failed_rows_underflow_and_too_few_images():
    failed = np.array([[0.9, 0.1], [np.nan, np.nan], [0.6, 0.4]], np.float32)
    balanced = balance_classes(failed)
    assert np.isnan(balanced[1]).all() and balanced[[0, 2]].argmax(axis=1).tolist() == [0, 1]
    assert combine([balanced], [np.ones(2)])[1].tolist() == [0.0, 0.0]  # no vote, no NaN
    never = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]], np.float32)
    assert np.isfinite(balance_classes(never)).all()  # a class no image reaches: no 0/0
    with pytest.raises(MllzooError, match="at least as many images as classes: 2 readable"):
        balance_classes(np.array([[0.5, 0.3, 0.2], [np.nan] * 3, [0.2, 0.3, 0.5]]))


def test_the_logit_scale_follows_the_voters_unless_set():
    from mllzoo.reuse.ensemble import LOGIT_SCALE, SOFT_SCALE, voting_scale

    one_each = [np.array([1, 0, 0]), np.array([0, 1, 1])]
    assert voting_scale(None, one_each) == LOGIT_SCALE  # k = 1: each class one voter
    assert voting_scale(None, one_each + [np.array([0, 0, 1.0])]) == SOFT_SCALE
    assert voting_scale(None, [np.array([0.0, 0.3]), np.array([0.0, 0.2])]) == SOFT_SCALE
    assert voting_scale(None, [np.array([0.0, 0.3]), np.array([0.2, 0.0])]) == LOGIT_SCALE
    assert voting_scale(None, []) == LOGIT_SCALE
    assert voting_scale(40.0, one_each + one_each) == 40.0


def test_combine_weighs_each_vote_by_confidence_and_evidence_exactly():
    # model a: sure of class 0 on image 0 (entropy ln 2 over two classes), unsure on image 1
    a = np.array([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    # model b: as sure on both images
    b = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    h_a1 = -(2 * 0.25 * np.log(0.25) + 0.5 * np.log(0.5))
    ln2 = np.log(2)
    weights_a = vote_weights(np.array([0.8, 0.4, 0.6]), np.array([True, True, False]), 2.0)
    weights_b = vote_weights(np.array([0.1, 0.5, 0.9]), np.array([False, True, True]), 2.0)
    total = combine([a, b], [weights_a, weights_b])
    expected = np.array(
        [
            [0.5 * 0.64 / ln2, 0.5 * 0.16 / ln2 + 0.5 * 0.25 / ln2, 0.5 * 0.81 / ln2],
            [0.25 * 0.64 / h_a1, 0.25 * 0.16 / h_a1, 0.5 * 0.81 / ln2],
        ]
    )
    assert total == pytest.approx(expected, rel=1e-12)
    assert total.argmax(axis=1).tolist() == [2, 2]
    # the paper's 0/1 votes on the same probabilities pick class 1 for image 0
    paper = combine([a, b], [weights_a > 0, weights_b > 0])
    assert paper[0] == pytest.approx([0.5 / ln2, 1 / ln2, 0.5 / ln2]) and paper[0].argmax() == 1


def todays_paper_probabilities(rec, paths) -> np.ndarray:
    """The paper's reuse as ``Ensemble`` computed it before the evidence reuse, written out whole:
    photo prompts, softmax at logit scale 100, 1/entropy times the 0/1 vote mask, rows summed to 1."""
    from mllzoo.graph.images import ImageCache
    from mllzoo.models.catalog import discover_models
    from mllzoo.models.vlm import encode_images, encode_texts, load_model

    catalog = discover_models()
    cache = ImageCache(None, [str(p.resolve()) for p in paths])
    total = np.zeros((len(paths), len(rec.classes)))
    for model_id, mask in rec.votes().items():
        model = load_model(catalog[model_id].spec, "cpu", plugin=catalog[model_id].plugin)
        texts = [f"a photo of a {name}." for name in rec.classes]
        vectors = encode_texts(model, texts)
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        tensor, _ = cache.chunk(model.preprocess_key, model.preprocess, 0, len(paths))
        logits = 100.0 * encode_images(model, tensor) @ vectors.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        total += (1 / np.maximum(entropy, 1e-6))[:, None] * p * mask[None, :]
    return total / total.sum(axis=1, keepdims=True)


@pytest.mark.slow
def test_paper_reuse_reproduces_todays_predictions_exactly(world, tinyclip_plugin):
    import mllzoo

    root, env = world
    paths = sorted((root / "task").rglob("*.png"))
    rec = mllzoo.recommend(root / "classes.txt", k=2, registry=env["MLLZOO_REGISTRY"])
    assert len(rec.models) == 2  # two models voting: the weights matter
    proba, readable = rec.ensemble(device="cpu", reuse="paper").predict_proba(paths)
    expected = todays_paper_probabilities(rec, paths)
    assert readable == list(range(len(paths)))
    assert np.array_equal(proba.argmax(axis=1), expected.argmax(axis=1))
    assert proba == pytest.approx(expected, rel=1e-6)
    for other in ("described", "evidence"):  # the other methods do differ
        assert not np.allclose(
            rec.ensemble(device="cpu", reuse=other).predict_proba(paths)[0], expected
        )


@pytest.mark.slow
def test_the_described_reuse_softens_each_models_softmax_to_its_scale(world, tinyclip_plugin):
    """Same prompts, same logits: only the logit scale differs, as SOFT_SCALE / LOGIT_SCALE."""
    import mllzoo
    from mllzoo.reuse.ensemble import LOGIT_SCALE, SOFT_SCALE, ReuseMethod, softmax

    root, env = world
    paths = sorted((root / "task").rglob("*.png"))
    rec = mllzoo.recommend(root / "classes.txt", k=2, registry=env["MLLZOO_REGISTRY"])
    soft, _ = rec.ensemble(device="cpu", reuse="described").model_probabilities(paths)
    sharp, _ = rec.ensemble(
        device="cpu", reuse=ReuseMethod("descriptions", 0.0, LOGIT_SCALE)
    ).model_probabilities(paths)
    assert set(soft) == set(sharp) and len(soft) == 2
    for model_id, probabilities in sharp.items():
        rescaled = softmax(SOFT_SCALE / LOGIT_SCALE * np.log(probabilities))
        assert soft[model_id] == pytest.approx(rescaled, rel=1e-4, abs=1e-6)
        assert not np.allclose(soft[model_id], probabilities)


def predict_on_the_world_task(world, monkeypatch):
    """The world's registry for the CLI, its class file, its task's images and their k=2 choice."""
    import mllzoo

    root, env = world
    monkeypatch.setenv("MLLZOO_REGISTRY", env["MLLZOO_REGISTRY"])
    paths = sorted((root / "task").rglob("*.png"))
    rec = mllzoo.recommend(root / "classes.txt", k=2, registry=env["MLLZOO_REGISTRY"])
    return root, str(root / "classes.txt"), paths, rec


@pytest.mark.slow
def test_predict_reuse_flag_chooses_the_method(world, tinyclip_plugin, monkeypatch):
    from click.testing import CliRunner

    from mllzoo.cli.main import cli

    root, classes, paths, rec = predict_on_the_world_task(world, monkeypatch)
    for reuse in ("paper", "described", "evidence"):
        result = CliRunner().invoke(
            cli, ["predict", str(root / "task"), "--classes", classes, "-k", "2", "--reuse", reuse]
        )
        assert result.exit_code == 0, result.output
        printed = dict(line.split("\t") for line in result.output.splitlines() if "\t" in line)
        expected = rec.ensemble(device="cpu", reuse=reuse).predict(paths)
        assert [printed[str(p)] for p in paths] == expected
    bad = CliRunner().invoke(
        cli, ["predict", str(root / "task"), "--classes", classes, "--reuse", "x"]
    )
    assert bad.exit_code == 2 and "Invalid value for '--reuse'" in bad.output


@pytest.mark.slow
def test_predict_balanced_balances_each_models_probabilities(world, tinyclip_plugin, monkeypatch):
    import json

    from click.testing import CliRunner

    from mllzoo.cli.main import cli

    root, classes, paths, rec = predict_on_the_world_task(world, monkeypatch)
    per_model, _ = rec.ensemble(device="cpu").model_probabilities(paths)
    members = rec.ensemble(device="cpu")
    total = combine(
        [balance_classes(p) for p in per_model.values()], [members.weights[m] for m in per_model]
    )
    proba, _ = rec.ensemble(device="cpu", balanced=True).predict_proba(paths)
    assert proba == pytest.approx(total / total.sum(axis=1, keepdims=True))
    assert not np.allclose(proba, rec.ensemble(device="cpu").predict_proba(paths)[0])

    args = ["predict", str(root / "task"), "--classes", classes, "-k", "2", "--balanced"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["balanced"] is True
    labels = [rec.classes[i] for i in proba.argmax(axis=1)]
    assert [row["label"] for row in data["predictions"]] == labels
    one = CliRunner().invoke(cli, ["predict", str(paths[0]), *args[2:]])
    assert one.exit_code == 2 and "Traceback" not in one.output, one.output
    assert "--balanced needs at least as many images as classes: 1 image(s) for 3" in one.output


def test_the_cli_offers_every_reuse_method():
    from mllzoo.cli.main import cli

    for command in ("predict", "bench"):
        option = next(p for p in cli.commands[command].params if p.name == "reuse")
        assert sorted(option.type.choices) == sorted(REUSE_METHODS)
