"""Routes of the regular consultation (定期会商): meetings, agenda items, minutes, decisions, action items."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/consultation", tags=["consultation"])
