"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import OwnPoolDep
from api.problems import Problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"description": "The database is unreachable"}})
async def readyz(pool: OwnPoolDep) -> Health:
    """The API can reach its database."""
    try:
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except Exception as exc:
        raise Problem(
            503, "not-ready", "Not ready", f"database unreachable: {type(exc).__name__}"
        ) from None
    return Health(status="ready")
