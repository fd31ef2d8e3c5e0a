"""Domain catalogues declared as YAML data (behaviours, subject kinds, severities …), validated at load.

The way FollowTheMoney keeps its schema: the code asks the catalogue, it does not hard-code lists.
A malformed file fails at start with the file, the entry and the field that is wrong.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fanchaoxin.core.identifiers import IdentifierType

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "catalogues"


class CatalogueError(ValueError):
    pass


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str
    en: str


class Behaviour(_Item):
    """A kind of 炒信."""


class SubjectKind(_Item):
    personal: bool
    liable_persons: bool = False
    identifiers: tuple[IdentifierType, ...]


class Severity(_Item):
    """失信程度 with its publication period."""

    min_months: int = Field(ge=0)
    max_months: int = Field(ge=1)
    public: bool


T = TypeVar("T", bound=_Item)


def load_list(path: Path, model: type[T]) -> dict[str, T]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(data, list):
        raise CatalogueError(f"{path.name}: expected a list of entries")
    items: dict[str, T] = {}
    for i, raw in enumerate(data, start=1):
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(entry)"
            raise CatalogueError(f"{path.name}: entry {i}, field {where}: {err['msg']}") from exc
        if item.code in items:
            raise CatalogueError(f"{path.name}: entry {i}: duplicate code {item.code!r}")
        items[item.code] = item
    return items


class Catalogues:
    def __init__(self, directory: Path = CATALOGUE_DIR) -> None:
        self.behaviours = load_list(directory / "behaviours.yaml", Behaviour)
        self.subject_kinds = load_list(directory / "subject_kinds.yaml", SubjectKind)
        self.severities = load_list(directory / "severities.yaml", Severity)
        for s in self.severities.values():
            if s.max_months < s.min_months:
                raise CatalogueError(f"severities.yaml: {s.code}: max_months is below min_months")


@cache
def catalogues() -> Catalogues:
    return Catalogues()
