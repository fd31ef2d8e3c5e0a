"""Routes of each enterprise's rulebook (企业规则): which of the 13 measures its rules let it apply."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["rulebooks"])
