"""Domain catalogues declared as YAML data (behaviours, subject kinds, severities, bases, statuses …).

The way FollowTheMoney keeps its schema: the code asks the catalogue, it does not hard-code lists or
labels. This module is the one loader of every YAML file of the platform — the catalogues here and the
measure catalogues and grading policies of `sanctions.policy` — and `CatalogueError` its one error.
Every error names the file, the line and the key, e.g.

    severities.yaml:18: serious.max_months: is below min_months (36)
    policy.yaml:14: rules[2].measures[0].code: unknown measure 'deny_everything'

Duplicate keys, YAML syntax errors, pydantic validation errors and the cross-checks between files are
all reported so, when the file is loaded (at start), never later while serving a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from yaml.constructor import SafeConstructor

from fanchaoxin.core.identifiers import IdentifierType

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "catalogues"

Lines = dict[tuple[Any, ...], int]
"""The 1-based line of every mapping key and list item of a file, by its path (`("rules", 2, "when")`)."""


class CatalogueError(ValueError):
    """A catalogue or policy file that cannot be used; the message is `file:line: key: message`."""


# --- YAML with line numbers -----------------------------------------------------------------------------


def read_yaml(text: str, filename: str) -> tuple[Any, Lines]:
    """Parse YAML, refusing duplicate keys, and remember the line of every key and list item."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CatalogueError(f"{filename}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if root is None:
        raise CatalogueError(f"{filename}:1: the file is empty")
    lines: Lines = {}
    scalars = SafeConstructor()

    def build(node: yaml.Node, path: tuple[Any, ...]) -> Any:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = scalars.construct_object(key_node, deep=True)
                at = key_node.start_mark.line + 1
                if key in out:
                    where = _key((*path, key)) if path else str(key)
                    first = lines[(*path, key)]
                    raise CatalogueError(
                        f"{filename}:{at}: {where}: duplicate key {key!r} (first at line {first})"
                    )
                out[key] = build(value_node, (*path, key))
                lines[(*path, key)] = at
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return scalars.construct_object(node, deep=True)

    try:
        return build(root, ()), lines
    except yaml.YAMLError as exc:  # e.g. a bad timestamp or an unhashable key
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CatalogueError(f"{filename}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def _key(loc: Iterable[Any]) -> str:
    """`("rules", 2, "when")` → `rules[2].when`."""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def line_of(lines: Lines, path: tuple[Any, ...]) -> int:
    """The line of `path`, or of its nearest parent the file has (a missing key: its mapping's line)."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def locate(filename: str, lines: Lines, path: tuple[Any, ...], key: str | None = None) -> str:
    """`file:line: key` for a path of the file (`key` names it when the path's own spelling would not)."""
    return f"{filename}:{line_of(lines, path)}: {key or _key(path) or '(top)'}"


# A model check names the path below its own location at the start of its message: "when.severity[0]: …".
_SUBPATH = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*): (.*)$", re.S)

M = TypeVar("M", bound=BaseModel)


def validate(
    model: type[M],
    data: Any,
    filename: str,
    lines: Lines,
    *,
    at: tuple[Any, ...] = (),
    name: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> M:
    """`model.model_validate(data)`, with the first error mapped back to its file, line and key.

    `at` is where `data` sits in the file; `name` spells that place in the message (an item's code,
    rather than its position); `context` reaches the model's validators (for cross-checks).
    """
    try:
        return model.model_validate(data, context=dict(context) if context is not None else None)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc: tuple[Any, ...] = tuple(err["loc"])
        sub = _SUBPATH.match(msg)
        if sub:
            msg = sub.group(2)
            parts = sub.group(1).replace("]", "").replace("[", ".").split(".")
            loc = (*loc, *(int(p) if p.isdigit() else p for p in parts))
        if name is not None:
            key: str | None = name + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        else:
            key = _key((*at, *loc)) or None
        raise CatalogueError(f"{locate(filename, lines, (*at, *loc), key)}: {msg}") from exc


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(Strict):
    """A code with its names: Chinese (the default) and English."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def text(self, locale: str) -> str:
        """The name in a console locale (`zh_CN`, `en`)."""
        return self.zh if locale.startswith("zh") else self.en


T = TypeVar("T", bound=Label)


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """The items of a catalogue list by code, with where each one is in its file (for cross-checks)."""

    filename: str
    items: dict[str, T]
    lines: Lines
    paths: dict[str, tuple[Any, ...]]

    def error(self, code: str, field: str | None, message: str) -> CatalogueError:
        """An error about one item (or one of its fields), found by a check across files."""
        path = self.paths.get(code, ())
        if field is not None:
            path, code = (*path, field), f"{code}.{field}"
        return CatalogueError(f"{locate(self.filename, self.lines, path, code)}: {message}")


def index_items(
    raw: Any,
    model: type[T],
    filename: str,
    lines: Lines,
    *,
    at: tuple[Any, ...] = (),
    context: Mapping[str, Any] | None = None,
) -> Loaded[T]:
    """A YAML list of coded items → `{code: item}`; a duplicate code names both lines."""
    if not isinstance(raw, list):
        raise CatalogueError(f"{locate(filename, lines, at)}: expected a list of entries")
    items: dict[str, T] = {}
    paths: dict[str, tuple[Any, ...]] = {}
    for i, data in enumerate(raw):
        where = (*at, i)
        code = data.get("code") if isinstance(data, dict) else None
        name = code if isinstance(code, str) and code else _key(where)
        item = validate(model, data, filename, lines, at=where, name=name, context=context)
        if item.code in items:
            first = line_of(lines, paths[item.code])
            raise CatalogueError(
                f"{locate(filename, lines, (*where, 'code'), item.code)}: duplicate code {item.code!r} "
                f"(first at line {first})"
            )
        items[item.code] = item
        paths[item.code] = where
    return Loaded(filename, items, lines, paths)


def read_file(path: Path) -> tuple[Any, Lines]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path.name}:1: cannot read the file: {exc.strerror or exc}") from exc
    return read_yaml(text, path.name)


def load_list(path: Path, model: type[T], *, context: Mapping[str, Any] | None = None) -> Loaded[T]:
    """A catalogue file that is a list of coded items."""
    data, lines = read_file(path)
    return index_items(data, model, path.name, lines, context=context)


# --- the vocabularies ---------------------------------------------------------------------------------------


class Behaviour(Label):
    """A kind of 炒信."""


class SubjectKind(Label):
    personal: bool
    liable_persons: bool = False
    identifiers: tuple[IdentifierType, ...] = Field(min_length=1)


class Severity(Label):
    """失信程度 with its publication period."""

    min_months: int = Field(ge=0)
    max_months: int = Field(ge=1)
    public: bool

    @model_validator(mode="after")
    def _period(self) -> Severity:
        if self.max_months < self.min_months:
            raise ValueError(f"max_months: is below min_months ({self.min_months})")
        return self


class Basis(StrEnum):
    """What an entry rests on (the code branches on it); `bases.yaml` says what each one means."""

    enterprise_finding = "enterprise_finding"  # an enterprise's own monitoring; platform review + notice
    administrative_penalty = "administrative_penalty"  # 行政处罚决定书
    judicial_decision = "judicial_decision"  # 裁判文书


class ListItem(Label):
    """One of the two lists (两类名单, lists.yaml): the public 失信 list or the market-shared list."""

    public: bool = Field(description="Public query, public statistics and correction notices show it.")
    departments: bool = Field(description="Departments may receive its entries as 失信 records.")
    meaning_zh: str = Field(min_length=1)
    meaning_en: str = Field(min_length=1)

    def meaning(self, locale: str) -> str:
        """What the list is, in a console locale (`zh_CN`, `en`)."""
        return self.meaning_zh if locale.startswith("zh") else self.meaning_en


class BasisItem(Label):
    """A basis: whether the memoranda's department measures apply, whether 告知 comes first, which
    list its entries form (lists.yaml), …"""

    punishing: bool
    needs_notice: bool
    list: str = Field(min_length=1, description="The list its entries form: a code of lists.yaml.")
    aliases: tuple[str, ...] = Field(default=(), description="Other Chinese names accepted in uploads.")

    @field_validator("code")
    @classmethod
    def _a_basis(cls, v: str) -> str:
        if v not in Basis.__members__:
            raise ValueError(f"unknown basis {v!r}; one of {', '.join(Basis)}")
        return v


class StatusItem(Label):
    """A status of an entry or a case (objection, report, repair application)."""


class StatusFile(Strict):
    entry: list[Any]
    case: list[Any]


# Vocabulary names (as templates and the statistics use them) and the file each one is in.
VOCABULARIES = {
    "behaviour": "behaviours.yaml",
    "severity": "severities.yaml",
    "subject_kind": "subject_kinds.yaml",
    "basis": "bases.yaml",
    "list": "lists.yaml",
    "entry_status": "statuses.yaml",
    "case_status": "statuses.yaml",
}


class Catalogues:
    """Every catalogue of `directory`, loaded and cross-checked; `catalogues()` is the shipped one."""

    def __init__(self, directory: Path = CATALOGUE_DIR) -> None:
        self.directory = directory
        self.behaviours = load_list(directory / "behaviours.yaml", Behaviour).items
        self.subject_kinds = load_list(directory / "subject_kinds.yaml", SubjectKind).items
        self.severities = load_list(directory / "severities.yaml", Severity).items
        bases = load_list(directory / "bases.yaml", BasisItem)
        missing = [b.value for b in Basis if b.value not in bases.items]
        if missing:
            raise CatalogueError(
                f"bases.yaml:1: (top): no entry for basis {', '.join(map(repr, missing))} "
                "(every Basis needs one)"
            )
        self.bases = {b.value: bases.items[b.value] for b in Basis}  # in the enum's order
        self.lists = load_list(directory / "lists.yaml", ListItem).items
        for code, basis in self.bases.items():
            target = self.lists.get(basis.list)
            if target is None:
                raise bases.error(
                    code, "list", f"unknown list {basis.list!r}; one of {', '.join(self.lists)} (lists.yaml)"
                )
            if basis.punishing and not target.departments:
                # The memoranda send punishing entries to departments: the list must allow it.
                raise bases.error(
                    code, "punishing", f"the {basis.list!r} list never reaches departments (lists.yaml)"
                )
        data, lines = read_file(directory / "statuses.yaml")
        statuses = validate(StatusFile, data, "statuses.yaml", lines)
        self.entry_statuses = index_items(
            statuses.entry, StatusItem, "statuses.yaml", lines, at=("entry",)
        ).items
        self.case_statuses = index_items(
            statuses.case, StatusItem, "statuses.yaml", lines, at=("case",)
        ).items
        self._vocabularies: dict[str, Mapping[str, Label]] = {
            "behaviour": self.behaviours,
            "severity": self.severities,
            "subject_kind": self.subject_kinds,
            "basis": self.bases,
            "list": self.lists,
            "entry_status": self.entry_statuses,
            "case_status": self.case_statuses,
        }

    def vocabulary(self, name: str) -> Mapping[str, Label]:
        """The items of a vocabulary (one of VOCABULARIES) by code."""
        if name not in self._vocabularies:
            raise KeyError(f"unknown vocabulary {name!r}; one of {', '.join(VOCABULARIES)}")
        return self._vocabularies[name]

    def names(self, vocabulary: str, code: str) -> tuple[str, str]:
        """(zh, en) of a code; the code itself when the catalogue no longer has it."""
        item = self.vocabulary(vocabulary).get(code)
        return (item.zh, item.en) if item is not None else (code, code)

    def require(self, vocabulary: str, codes: Iterable[str]) -> None:
        """Fail unless the catalogue names every code a slice's enum has (a cross-check at its import)."""
        known = self.vocabulary(vocabulary)
        missing = [c for c in (str(c) for c in codes) if c not in known]
        if missing:
            raise CatalogueError(
                f"{VOCABULARIES[vocabulary]}:1: {vocabulary}: no entry for {', '.join(map(repr, missing))}"
            )


@cache
def catalogues() -> Catalogues:
    return Catalogues()


@cache
def punishing_bases() -> frozenset[str]:
    """Bases the joint-punishment memoranda apply to: departments receive and act on these entries."""
    return frozenset(c for c, b in catalogues().bases.items() if b.punishing)


@cache
def notice_bases() -> frozenset[str]:
    """Bases whose entries are notified to the subject (告知, 陈述申辩) before publication."""
    return frozenset(c for c, b in catalogues().bases.items() if b.needs_notice)


@cache
def department_bases() -> frozenset[str]:
    """Bases whose entries form a list that departments may receive (lists.yaml `departments`): a
    department never receives the market-shared list of the participating enterprises."""
    cat = catalogues()
    return frozenset(c for c, b in cat.bases.items() if cat.lists[b.list].departments)


def list_of(basis: str) -> str:
    """The list (lists.yaml code) an entry on this basis is on: `public` or `shared` (两类名单)."""
    return catalogues().bases[basis].list


@cache
def public_bases() -> frozenset[str]:
    """Bases whose entries form a public list: the one test of everything public — the public query,
    the public statistics and the correction notices. (The query also hides a severity that is never
    published, severities.yaml `public`.)"""
    cat = catalogues()
    return frozenset(c for c, b in cat.bases.items() if cat.lists[b.list].public)


@cache
def public_severities() -> frozenset[str]:
    """Severities whose entries may be published (severities.yaml `public`: a minor case never is)."""
    return frozenset(c for c, s in catalogues().severities.items() if s.public)


def shown_publicly(basis: str, severity: str) -> bool:
    """Whether an entry in force is shown to the public (公示): on a public list and of a published
    severity. The one test of the public query, the public commitments and whatever else is public."""
    return basis in public_bases() and severity in public_severities()
