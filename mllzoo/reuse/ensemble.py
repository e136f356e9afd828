"""Model reuse (MLL step 4): a zero-shot ensemble of the selected models, weighted per image.

Each model gives softmax probabilities over all target classes from its class vectors (the mean
text embedding of each class's prompts) and votes only for the classes it was selected for. Its
vote for an image and a class is weighted by the inverse entropy of its prediction (confident
models count more) and, in the ``evidence`` reuse, by its selection score for the class (the
label's evidence that it knows the class). The prediction is the argmax of the weighted sum.
``paper`` is the MLL paper's reuse (CLIP's photo prompts, 1/entropy alone, CLIP's logit scale);
``described`` (the default) adds the captioner's class descriptions to the prompts and softens each
model's softmax, so that adding models (k > 1) helps instead of letting the most confident decide.
With ``balanced`` (``predict --balanced``), each model's probabilities over the batch are first
rescaled so that every class gets an equal share of the images (:func:`balance_classes`): right only
when the images hold the classes in about equal numbers, as a test set does.
``docs/design.md`` gives the measurements behind the default.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mllzoo.classes import display_name
from mllzoo.defaults import BATCH_SIZE, DEVICE, REUSE
from mllzoo.errors import MllzooError, warn
from mllzoo.graph.images import ImageCache
from mllzoo.models.catalog import CatalogEntry
from mllzoo.models.vlm import CaptionFeatures, LoadedModel, encode_images, load_model
from mllzoo.reuse.predict import problem_of

LOGIT_SCALE = 100.0  # CLIP's learned temperature at convergence; shared by every family here
SOFT_SCALE = 15.0  # the ensemble's softer one: no overconfident model drowns the others' votes
PROMPT_SETS = ("paper", "descriptions", "concepts")
BALANCE_ROUNDS = 20  # Sinkhorn rounds: the class shares are within 1% of equal after about ten


@dataclass(frozen=True)
class ReuseMethod:
    """How reuse turns the selected models into one prediction.

    ``prompts``: ``paper`` (CLIP's photo template and its domain form), ``descriptions`` (those plus
    the captioner's descriptions of the class) or ``concepts`` (those plus the caption of the class's
    best-matched graph concept). ``power``: the exponent of the selection score in each vote (0: the
    vote is 1/entropy alone, as in the paper). ``scale``: the logit scale of each model's softmax
    (CLIP's 100), or ``None``: by the voters (:func:`voting_scale`).
    """

    prompts: str
    power: float
    scale: float | None = LOGIT_SCALE


REUSE_METHODS = {
    "paper": ReuseMethod("paper", 0.0),
    "described": ReuseMethod("descriptions", 0.0, None),
    "evidence": ReuseMethod("descriptions", 1.0),
}


def voting_scale(scale: float | None, votes: Iterable[np.ndarray]) -> float:
    """The logit scale of the models' softmax: ``scale`` when set; else CLIP's where each class has
    one voter (k = 1: the votes compare models across classes, whose sharp confidences rank them
    well), and the softer :data:`SOFT_SCALE` where some class has several (k > 1: at CLIP's scale the
    most confident model decides alone, so k = 3 fell below k = 1). docs/design.md has the figures."""
    if scale is not None:
        return scale
    voters = sum((np.asarray(v) > 0).astype(int) for v in votes)
    return SOFT_SCALE if np.max(voters, initial=0) > 1 else LOGIT_SCALE


def reuse_method(name: str | ReuseMethod) -> ReuseMethod:
    """The named reuse method (``paper``, ``described`` or ``evidence``), or one given whole."""
    if isinstance(name, ReuseMethod):
        return name
    if name not in REUSE_METHODS:
        raise MllzooError(f"unknown reuse {name!r}: use {', '.join(REUSE_METHODS)}")
    return REUSE_METHODS[name]


def prompts(name: str, domain: str | None) -> list[str]:
    """The paper's zero-shot prompts for one class: CLIP's photo template, plus its domain form."""
    name = display_name(name)
    return [f"a photo of a {name}."] + (
        [f"a photo of a {name}, a type of {domain}."] if domain else []
    )


def class_prompts(
    names: list[str],
    domain: str | None,
    prompt_set: str = "paper",
    descriptions: Sequence[Sequence[str]] = (),
    concepts: Sequence[str] = (),
) -> list[list[str]]:
    """Per class, the prompts its vector averages: the paper's, then (by ``prompt_set``) the
    captioner's ``descriptions`` of the class, then the caption of its best-matched concept; each
    text once, in that order."""
    if prompt_set not in PROMPT_SETS:
        raise MllzooError(f"unknown prompt set {prompt_set!r}: use {', '.join(PROMPT_SETS)}")
    out = []
    for y, name in enumerate(names):
        texts = prompts(name, domain)
        if prompt_set != "paper":
            texts += list(descriptions[y])
        if prompt_set == "concepts":
            texts.append(concepts[y])
        out.append(list(dict.fromkeys(texts)))
    return out


def class_vectors(
    model: LoadedModel, class_texts: list[list[str]], shared: CaptionFeatures | None = None
) -> np.ndarray:
    """One unit vector per class: the model's mean text embedding of the class's prompts.
    ``shared`` (built on the same prompts, flattened) lets models with one text tower embed them once."""
    texts = shared or shared_texts(class_texts)
    features = texts.of(model)
    bounds = np.cumsum([0] + [len(group) for group in class_texts])
    vectors = np.stack([features[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def shared_texts(class_texts: list[list[str]]) -> CaptionFeatures:
    """The prompts of a task, flattened, to embed once per text tower (:func:`class_vectors`)."""
    return CaptionFeatures([text for group in class_texts for text in group])


def vote_weights(scores: np.ndarray, chosen: np.ndarray, power: float) -> np.ndarray:
    """A model's vote weight per class: ``max(score, 0) ** power`` where it was chosen, else 0 (with
    ``power`` 0, exactly the paper's 0/1 vote mask)."""
    return np.where(chosen, np.maximum(scores, 0.0) ** power, 0.0)


def build_ensemble(
    classes: list[str],
    members: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    entries: dict[str, CatalogEntry],
    domain: str | None,
    reuse: str | ReuseMethod = REUSE,
    descriptions: Sequence[Sequence[str]] = (),
    concepts: Sequence[str] = (),
    device: str = DEVICE,
    batch_size: int = BATCH_SIZE,
    balanced: bool = False,
) -> Ensemble:
    """The ensemble of ``members`` (model id -> bool mask of the classes it was chosen for) under a
    reuse method; ``scores`` holds each member's selection score per class; ``balanced``: see
    :func:`balance_classes`."""
    method = reuse_method(reuse)
    return Ensemble(
        classes,
        members,
        entries,
        domain,
        device,
        batch_size,
        prompts=class_prompts(classes, domain, method.prompts, descriptions, concepts),
        weights={m: vote_weights(scores[m], mask, method.power) for m, mask in members.items()},
        scale=voting_scale(method.scale, members.values()),
        balanced=balanced,
    )


def image_features(
    model: LoadedModel, cache: ImageCache, batch_size: int, chunk: int = 512
) -> tuple[np.ndarray, list[int]]:
    """Unit image features ``[n_readable, dim]`` for the cache's images, and their indices."""
    features, readable = [], []
    for start in range(0, len(cache.paths), chunk):
        tensor, ok = cache.chunk(
            model.preprocess_key, model.preprocess, start, min(start + chunk, len(cache.paths))
        )
        features += [
            encode_images(model, tensor[s : s + batch_size]) for s in range(0, len(ok), batch_size)
        ]
        readable += ok
    return (np.concatenate(features) if features else np.zeros((0, 0), np.float32)), readable


def zero_shot(features: np.ndarray, vectors: np.ndarray, scale: float = LOGIT_SCALE) -> np.ndarray:
    """Softmax over the classes ``[n, classes]`` from image features and class vectors, at the
    logit ``scale``."""
    if not len(features):
        return np.zeros((0, len(vectors)), np.float32)
    return softmax(scale * features @ vectors.T)


def zero_shot_probabilities(
    model: LoadedModel,
    vectors: np.ndarray,
    cache: ImageCache,
    batch_size: int,
    scale: float = LOGIT_SCALE,
) -> tuple[np.ndarray, list[int]]:
    """Softmax over the classes ``[n_readable, classes]`` for the cache's images, and their indices."""
    features, readable = image_features(model, cache, batch_size)
    return zero_shot(features, vectors, scale), readable


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def inverse_entropy_weights(probabilities: np.ndarray) -> np.ndarray:
    """``1 / H(p)`` per row; a zero entropy is capped and a NaN row gets no weight."""
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(
            np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0), axis=1
        )
    weights = 1.0 / np.maximum(entropy, 1e-6)
    return np.where(np.isnan(probabilities).any(axis=1), 0.0, weights)


def balance_classes(probabilities: np.ndarray, rounds: int = BALANCE_ROUNDS) -> np.ndarray:
    """One model's probabilities ``[n, classes]`` rescaled per class, then per image, in turn
    (Sinkhorn), until each class has an equal share of the batch and each row still sums to 1: a
    model that leans toward some classes stops giving them most images. Only right when the images
    hold the classes in about equal numbers. A NaN row (a failed output) is left as it is, and gets
    no vote in :func:`combine`."""
    finite = ~np.isnan(probabilities).any(axis=1)
    images, classes = int(finite.sum()), probabilities.shape[1]
    if images < classes:
        raise MllzooError(
            f"balancing the classes needs at least as many images as classes: {images} readable "
            f"image(s) for {classes} classes"
        )
    shares = np.maximum(probabilities[finite].astype(np.float64), np.finfo(np.float64).tiny)
    shares /= shares.sum(axis=1, keepdims=True)
    for _ in range(rounds):
        shares /= shares.sum(axis=0, keepdims=True)
        shares /= shares.sum(axis=1, keepdims=True)
    balanced = probabilities.astype(np.float64)
    balanced[finite] = shares
    return balanced


def combine(per_model: list[np.ndarray], votes: list[np.ndarray]) -> np.ndarray:
    """Weighted sum over models of their probabilities, each times 1/entropy per image and its
    ``votes`` per class (a 0/1 mask of the classes it votes for, or :func:`vote_weights`)."""
    total = np.zeros_like(per_model[0])
    for probabilities, mask in zip(per_model, votes):
        total += (
            inverse_entropy_weights(probabilities)[:, None]
            * np.nan_to_num(probabilities)
            * mask[None, :]
        )
    return total


@dataclass(repr=False)
class Ensemble:
    """The selected models with the classes each votes for; loads each model once, on first use.

    ``prompts`` holds each class's prompts (default: the paper's, from ``domain``); ``weights`` each
    model's vote weight per class (default: its 0/1 ``members`` mask, the paper's vote); ``scale``
    the logit scale of each model's softmax (default: CLIP's, the paper's); ``balanced``: each
    model's probabilities balanced over the images predicted together (:func:`balance_classes`).
    """

    classes: list[str]
    members: dict[str, np.ndarray]  # model id -> bool mask over classes
    entries: dict[
        str, CatalogEntry
    ]  # model id -> what the catalogue offers: spec and owning plugin
    domain: str | None = None
    device: str = DEVICE
    batch_size: int = BATCH_SIZE
    prompts: list[list[str]] | None = None
    weights: dict[str, np.ndarray] | None = None
    scale: float = LOGIT_SCALE
    balanced: bool = False
    _loaded: dict[str, tuple[LoadedModel, np.ndarray]] = field(default_factory=dict, repr=False)
    unreadable: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.prompts is None:
            self.prompts = class_prompts(self.classes, self.domain)
        self._texts = shared_texts(self.prompts)  # embedded once per text tower
        if self.weights is None:
            self.weights = {m: mask.astype(float) for m, mask in self.members.items()}

    def __repr__(self) -> str:
        members = ", ".join(
            f"{m} ({int(votes.sum())} classes)" for m, votes in list(self.members.items())[:3]
        )
        more = f" (+{len(self.members) - 3} more)" if len(self.members) > 3 else ""
        return (
            f"<Ensemble: {len(self.members)} model(s) over {len(self.classes)} classes: {members}{more}; "
            f"{len(self._loaded)} loaded, device {self.device}>"
        )

    def _repr_html_(self) -> str:
        """Which model votes for which classes, for notebooks (every text escaped)."""
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(m)}</td><td>{escape(', '.join(c for c, v in zip(self.classes, votes) if v))}"
            f"</td></tr>"
            for m, votes in self.members.items()
        )
        return f"<table><thead><tr><th>model</th><th>votes for</th></tr></thead><tbody>{rows}</tbody></table>"

    def _model(self, model_id: str) -> tuple[LoadedModel, np.ndarray]:
        if model_id not in self._loaded:
            entry = self.entries[model_id]
            model = load_model(entry.spec, self.device, plugin=entry.plugin)
            assert self.prompts is not None  # set in __post_init__
            self._loaded[model_id] = (model, class_vectors(model, self.prompts, self._texts))
        return self._loaded[model_id]

    def model_probabilities(
        self, paths: Iterable[str | Path]
    ) -> tuple[dict[str, np.ndarray], list[int]]:
        """Per model, softmax probabilities ``[n_readable, classes]``, and the readable images' indices."""
        resolved = [str(Path(p).resolve()) for p in paths]
        cache = ImageCache(None, resolved)
        out: dict[str, np.ndarray] = {}
        readable: list[int] = []
        for model_id in self.members:
            model, vectors = self._model(model_id)
            out[model_id], readable = zero_shot_probabilities(
                model, vectors, cache, self.batch_size, self.scale
            )
        self.unreadable = [resolved[i] for i in sorted(cache.unreadable)]
        return out, readable

    def predict_proba(self, paths: Iterable[str | Path]) -> tuple[np.ndarray, list[int]]:
        """Ensemble scores ``[n_readable, classes]`` (rows sum to 1) and the readable images' indices."""
        per_model, readable = self.model_probabilities(paths)
        if self.balanced:
            per_model = {m: balance_classes(p) for m, p in per_model.items()}
        assert self.weights is not None  # set in __post_init__
        total = combine(list(per_model.values()), [self.weights[m] for m in per_model])
        sums = total.sum(axis=1, keepdims=True)
        return np.divide(total, sums, out=np.zeros_like(total), where=sums > 0), readable

    def predict(self, paths: Iterable[str | Path]) -> list[str | None]:
        """The predicted class per image; None for an unreadable image."""
        paths = list(paths)
        proba, readable = self.predict_proba(paths)
        labels: list[str | None] = [None] * len(paths)
        for row, i in zip(proba, readable):
            labels[i] = self.classes[int(row.argmax())]
        if self.unreadable:
            problems = Counter(problem_of(path) for path in self.unreadable)
            warn(
                f"{' and '.join(f'{n} {why}' for why, n in sorted(problems.items()))} image(s) skipped"
            )
        return labels
