"""Console pages: rulebooks (#22)."""

from __future__ import annotations

from fanchaoxin.console.common import console_router

router = console_router()
