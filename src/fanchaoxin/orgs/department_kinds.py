"""Kinds of department (部门类别) and their competence (职责), from `catalogues/department_kinds.yaml`.

One rule for what a department receives, asked by the joint-punishment engine (sanctions.competence)
and by the feed's webhook push (sharing.changes): an entry on a punishing basis (行政处罚, 司法裁判) one of
whose behaviours its kind's competence covers. A department without a kind receives nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from fanchaoxin.core.catalogue import CATALOGUE_DIR, Label, catalogues, load_list, punishing_bases

DEPARTMENT_KINDS = CATALOGUE_DIR / "department_kinds.yaml"


class DepartmentKind(Label):
    """A kind of department: the behaviours it acts on, and the document that gives it that part."""

    competence: Literal["all"] | tuple[str, ...] = Field(
        description="The behaviours (behaviours.yaml) it acts on; `all`: every behaviour."
    )
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _known_behaviours(self) -> DepartmentKind:
        if self.competence == "all":
            return self
        known = catalogues().behaviours
        if not self.competence:
            raise ValueError("competence: name at least one behaviour, or `all`")
        for i, code in enumerate(self.competence):
            if code not in known:
                raise ValueError(f"competence[{i}]: unknown behaviour {code!r}; one of {', '.join(known)}")
        return self

    def covers(self, behaviours: Iterable[str]) -> bool:
        """Whether one of an entry's behaviours is within this kind's competence."""
        return self.competence == "all" or bool(set(self.competence) & set(behaviours))


def load_department_kinds(path: Path = DEPARTMENT_KINDS) -> dict[str, DepartmentKind]:
    return load_list(path, DepartmentKind).items


@cache
def department_kinds() -> dict[str, DepartmentKind]:
    """The shipped catalogue of department kinds, by code."""
    return load_department_kinds()


def known_kinds() -> str:
    """The kinds' codes, as an error message lists them."""
    return ", ".join(department_kinds())


def receives(kind: str | None, *, basis: str, behaviours: Collection[str]) -> bool:
    """Whether a department of this kind receives an entry: on a punishing basis, within its competence.

    A department with no kind (or one the catalogue no longer has) receives nothing: it is told so on
    its page and by `fcx org list` until the platform gives it a kind.
    """
    found = department_kinds().get(kind) if kind else None
    return found is not None and basis in punishing_bases() and found.covers(behaviours)
