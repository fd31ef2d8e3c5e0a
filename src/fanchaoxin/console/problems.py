"""Problems (errors) in the reader's language: the one place the console turns a `Problem` or a
pydantic `ValidationError` into words for a person.

Pages call :func:`describe` (a service's `Problem`) or :func:`form_errors` (a form's
`ValidationError`) and show what they return; they never show `problem.detail`, a field path or a rule
tag themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from fanchaoxin.console.i18n import translator
from fanchaoxin.core.errors import Problem


@dataclass(frozen=True)
class ProblemText:
    """A problem as a page shows it: a title and plain messages, by field where one is named."""

    title: str
    messages: list[str] = field(default_factory=list)
    by_field: dict[str, str] = field(default_factory=dict)


def describe(problem: Problem, locale: str) -> ProblemText:
    """A service's problem in the page's language."""
    _ = translator(locale)
    title = problem.title_zh if locale == "zh_CN" else problem.title
    by_field: dict[str, str] = {}
    for err in problem.errors or []:
        by_field[str(err.get("field") or "form")] = _(str(err.get("message") or ""))
    return ProblemText(title, list(by_field.values()), by_field)


def form_errors(exc: ValidationError, locale: str) -> dict[str, str]:
    """A form's validation errors by field (the form's own field names), in the page's language."""
    _ = translator(locale)
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out[loc or "form"] = _(str(err.get("msg", "")))
    return out
