"""The module path ``EmbeddingSpace`` had before the memory layer declared the space
(``surreal_store._space``): objects pickled under it still load. Nothing in the package imports
this module; ``pickle`` does, by name."""

from __future__ import annotations

from .memory._models import EmbeddingSpace

__all__ = ["EmbeddingSpace"]
