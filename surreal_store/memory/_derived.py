"""The module path ``IndexStatus`` had before the recall index became a package of its own
(``surreal_store.memory._derived``): objects pickled under it still load. Nothing in the
package imports this module; ``pickle`` does, by name."""

from __future__ import annotations

from ._models import IndexStatus

__all__ = ["IndexStatus"]
