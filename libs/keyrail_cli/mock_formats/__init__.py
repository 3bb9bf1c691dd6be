"""The mock upstream's other wire formats, one module each (anthropic.py, gemini.py, ...).

Each module exposes `add_routes(app, mock)`, registering its provider's documented paths (they
never collide: `/v1/messages`, `/v1beta/models/{model}:generateContent`, `/v2/chat`, ...), so one
`keyrail mock-upstream` process speaks every format at once. Modules are discovered, not listed.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from keyrail_cli.mock_upstream import MockContext


def add_all_routes(app: web.Application, mock: MockContext) -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}").add_routes(app, mock)
