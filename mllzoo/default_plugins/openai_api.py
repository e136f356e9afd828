"""OpenAI text embeddings (``text-embedding-3-large``, as in the MLL paper), through the client the
OpenAI captioner uses too (:mod:`mllzoo.text.openai_client`).

The embedder is always offered and used only when chosen (``--embedder`` or ``mllzoo config set
embedder``); chosen without a key or without the ``openai`` package, it fails with one line.
"""

from __future__ import annotations

from mllzoo.hookspecs import hookimpl
from mllzoo.text.openai_client import check_ready, client

EMBEDDING_MODEL = "text-embedding-3-large"


class OpenAIEmbedder:
    id = f"openai:{EMBEDDING_MODEL}"
    remote = True  # every answer is cached in the registry: a second run makes no API call

    def check_ready(self) -> None:
        check_ready(f"the {self.id} embedder")

    def embed(self, texts: list[str]):
        import numpy as np

        rows: list[np.ndarray] = []
        for start in range(0, len(texts), 512):
            response = client().embeddings.create(
                model=EMBEDDING_MODEL, input=texts[start : start + 512]
            )
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


@hookimpl
def mllzoo_register_embedders(register) -> None:
    register(OpenAIEmbedder())
