"""Routes of the information-sharing agreement (信息共享协议): versions, signing, suspending, withdrawing."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["agreements"])
