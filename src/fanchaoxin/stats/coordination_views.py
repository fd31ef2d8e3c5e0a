"""Routes of the coordination figures (协同情况): per enterprise, the facts a consultation needs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/stats", tags=["coordination"])
