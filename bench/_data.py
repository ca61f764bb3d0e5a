"""Synthetic embeddings for the memory benchmarks and tests.

``clustered`` stands in for real sentence embeddings: a mixture of Gaussian clusters around
random centres, normalised (cosine to its centre about 0.94, within a cluster about 0.89,
between clusters about 0). ``uniform`` has no neighbourhood structure: the worst case for any
approximate index. Queries come from the same distribution as the data (another seed).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["clustered", "exact_top_k", "query_text", "texts", "uniform"]

Matrix = npt.NDArray[np.float32]


def clustered(
    n: int, *, dim: int = 384, clusters: int = 100, spread: float = 0.35, seed: int = 0
) -> Matrix:
    """``n`` unit vectors from ``clusters`` Gaussian clusters. The centres depend only on
    ``dim`` and ``clusters``, so queries drawn with another ``seed`` share them."""
    centres = np.random.default_rng(12345).normal(size=(clusters, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + rng.normal(scale=spread, size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def uniform(n: int, *, dim: int = 384, seed: int = 0) -> Matrix:
    """``n`` unit vectors in uniformly random directions."""
    x = np.random.default_rng(seed).normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def exact_top_k(data: Matrix, query: Matrix, k: int) -> npt.NDArray[np.intp]:
    """Row indices of the ``k`` rows of ``data`` most cosine-similar to ``query`` (unit
    vectors), best first."""
    sims = data @ query
    top = np.argpartition(-sims, k)[:k]
    return top[np.argsort(-sims[top])]


# The most frequent words of the synthetic language are English function words, as in real
# text; the memory analyzer drops them.
_FUNCTION_WORDS = [
    "the",
    "of",
    "and",
    "a",
    "to",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "was",
    "with",
    "as",
    "at",
    "by",
    "this",
    "be",
    "from",
    "or",
    "an",
    "are",
    "not",
    "but",
    "have",
    "they",
    "which",
    "you",
    "were",
    "her",
    "all",
    "she",
    "there",
    "their",
    "has",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "what",
    "can",
]


def _word(j: int) -> str:
    # Letters only: the analyzer's class tokenizer would split "w67" into "w" and "67".
    out = ""
    j += 26 * 26
    while j:
        j, r = divmod(j, 26)
        out = chr(ord("a") + r) + out
    return out


def texts(n: int, *, words: int = 12, vocabulary: int = 5000, seed: int = 0) -> list[str]:
    """``n`` distinct short texts whose words follow a Zipf law over ``vocabulary`` words, as
    natural language does: a few words (function words) are everywhere, most are rare. Each
    ends with a name of its own (``z`` + letters), so no two are equal."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocabulary + 1) ** 1.1
    picks = rng.choice(vocabulary, size=(n, words), p=weights / weights.sum())
    names = _FUNCTION_WORDS + [_word(j) for j in range(len(_FUNCTION_WORDS), vocabulary)]
    return [" ".join(names[j] for j in row) + f" z{_word(i)}" for i, row in enumerate(picks)]


def query_text(text: str, *, words: int = 2) -> str:
    """A question about ``text``: function words and ``words`` of its content words."""
    content = [w for w in text.split(" ")[:-1] if w not in _FUNCTION_WORDS][:words]
    return "what do we know about the " + " ".join(content)
