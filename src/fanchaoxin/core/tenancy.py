"""Tenant isolation: the one rule for what an organisation may see.

An enterprise (or department) sees what it owns or submitted, what is shared with all participants,
and what is addressed to it — nothing else. Another tenant's object answers 404, exactly like a
missing one, so that its existence does not leak. Platform staff see every tenant.

A model takes part by having `owner_org_id`, and optionally `addressed_to_org_id` and
`shared_with_all` columns.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, false, or_
from sqlalchemy.orm import Session

from fanchaoxin.core.auth import Principal
from fanchaoxin.core.errors import NotFound

T = TypeVar("T")


def visibility_clause(model: Any, principal: Principal) -> Any:
    if principal.is_platform:
        return None
    if principal.org_id is None:
        return false()
    conditions = [model.owner_org_id == principal.org_id]
    if hasattr(model, "addressed_to_org_id"):
        conditions.append(model.addressed_to_org_id == principal.org_id)
    if hasattr(model, "shared_with_all"):
        conditions.append(model.shared_with_all.is_(True))
    return or_(*conditions)


def scoped(stmt: Select[Any], model: Any, principal: Principal) -> Select[Any]:
    """Restrict a query to what the principal may see."""
    clause = visibility_clause(model, principal)
    return stmt if clause is None else stmt.where(clause)


def can_see(obj: Any, principal: Principal) -> bool:
    if principal.is_platform:
        return True
    if principal.org_id is None:
        return False
    if getattr(obj, "owner_org_id", None) == principal.org_id:
        return True
    if getattr(obj, "addressed_to_org_id", None) == principal.org_id:
        return True
    return bool(getattr(obj, "shared_with_all", False))


def get_visible(session: Session, model: type[T], object_id: Any, principal: Principal, *, what: str) -> T:
    """Fetch by id, or 404 both when it does not exist and when it belongs to someone else."""
    obj = session.get(model, object_id)
    if obj is None or not can_see(obj, principal):
        raise NotFound(f"No {what} with id {object_id}")
    return obj
