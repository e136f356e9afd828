"""Model reuse (MLL step 4): a zero-shot ensemble of the selected models, weighted per image.

Each model gives softmax probabilities over all target classes; its weight for an image is the
inverse entropy of that prediction (confident models count more), and it votes only for the
classes it was selected for. The prediction is the argmax of the weighted sum.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mllzoo.classes import display_name
from mllzoo.defaults import BATCH_SIZE, DEVICE
from mllzoo.errors import warn
from mllzoo.graph.images import ImageCache
from mllzoo.models.catalog import CatalogEntry
from mllzoo.models.vlm import LoadedModel, encode_images, encode_texts, load_model

LOGIT_SCALE = 100.0  # CLIP's learned temperature at convergence; shared by every family here


def prompts(name: str, domain: str | None) -> list[str]:
    """The zero-shot prompts for one class: CLIP's photo template, plus CLIP's domain form when given."""
    name = display_name(name)
    return [f"a photo of a {name}."] + (
        [f"a photo of a {name}, a type of {domain}."] if domain else []
    )


def class_vectors(model: LoadedModel, classes: list[str], domain: str | None) -> np.ndarray:
    """One unit vector per class: the model's mean text embedding of the class's prompts."""
    texts = [p for name in classes for p in prompts(name, domain)]
    features = encode_texts(model, texts)
    vectors = features.reshape(len(classes), -1, features.shape[1]).mean(axis=1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def zero_shot_probabilities(
    model: LoadedModel, vectors: np.ndarray, cache: ImageCache, batch_size: int, chunk: int = 512
) -> tuple[np.ndarray, list[int]]:
    """Softmax over the classes ``[n_readable, classes]`` for the cache's images, and their indices."""
    features, readable = [], []
    for start in range(0, len(cache.paths), chunk):
        tensor, ok = cache.chunk(
            model.preprocess_key, model.preprocess, start, min(start + chunk, len(cache.paths))
        )
        features += [
            encode_images(model, tensor[s : s + batch_size]) for s in range(0, len(ok), batch_size)
        ]
        readable += ok
    image_features = (
        np.concatenate(features) if features else np.zeros((0, vectors.shape[1]), np.float32)
    )
    return softmax(LOGIT_SCALE * image_features @ vectors.T), readable


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


def combine(per_model: list[np.ndarray], votes: list[np.ndarray]) -> np.ndarray:
    """Weighted sum over models of their probabilities, each masked to the classes it votes for."""
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
    """The selected models with the classes each votes for; loads each model once, on first use."""

    classes: list[str]
    members: dict[str, np.ndarray]  # model id -> bool mask over classes
    entries: dict[
        str, CatalogEntry
    ]  # model id -> what the catalogue offers: spec and owning plugin
    domain: str | None = None
    device: str = DEVICE
    batch_size: int = BATCH_SIZE
    _loaded: dict[str, tuple[LoadedModel, np.ndarray]] = field(default_factory=dict, repr=False)
    unreadable: list[str] = field(default_factory=list)

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
            self._loaded[model_id] = (model, class_vectors(model, self.classes, self.domain))
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
                model, vectors, cache, self.batch_size
            )
        self.unreadable = [resolved[i] for i in sorted(cache.unreadable)]
        return out, readable

    def predict_proba(self, paths: Iterable[str | Path]) -> tuple[np.ndarray, list[int]]:
        """Ensemble scores ``[n_readable, classes]`` (rows sum to 1) and the readable images' indices."""
        per_model, readable = self.model_probabilities(paths)
        total = combine(list(per_model.values()), [self.members[m] for m in per_model])
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
            warn(f"{len(self.unreadable)} unreadable image(s) skipped")
        return labels
