"""The ``surreal-store`` command line.

Every command opens the store from settings (``--url`` etc. beat ``SURREAL_STORE_*``), prints a
rich table or, with ``--json``, one JSON document, and exits non-zero with one line on error.
"""

from __future__ import annotations

import logging
import os
import sys

# Each command module adds its commands to the app; --help lists them in this order.
# isort: off
from . import _schema  # noqa: F401
from . import _reads  # noqa: F401
from . import _provenance  # noqa: F401
from . import _graph  # noqa: F401
from . import _tour  # noqa: F401
from . import _bundles  # noqa: F401
from . import _mcp  # noqa: F401
from . import _users  # noqa: F401
from . import _graph_io  # noqa: F401

# isort: on
from ._app import app
from ._render import out

__all__ = ["app", "main", "out"]


def main() -> None:
    """Console entry point.

    It leaves through ``os._exit`` once all output is flushed: the embedded engine's runtime can
    abort the interpreter's normal shutdown (SIGABRT after all output, a known engine fault),
    which would turn a success into exit code 134. Every store is closed by then.
    """
    code = 0
    try:
        app(prog_name="surreal-store")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
