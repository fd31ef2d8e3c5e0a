"""Chinese by default, English on request: gettext catalogues (Babel .po files) read at start-up.

The message ids are English; `locales/zh_CN/LC_MESSAGES/*.po` translate them to Chinese and
`locales/en/LC_MESSAGES/*.po` keep them (or say them more plainly). Each locale's catalogue is all its .po
files together, one file per area (`messages.po` for the shared pages; `problems.po` for errors,
`workbench.po`, `review.po`, `public.po`, `admin.po` …), so that work on one area does not touch another's
file; a msgid is in one file of a locale only. The .po files are parsed when the console starts (no
compile step); `locales/messages.pot` is the template, re-made with `python -m fanchaoxin.console.i18n
extract`. A test fails when a string of a template or of the console's code is missing from a catalogue.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
LOCALES_DIR = HERE / "locales"
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
KEYWORDS = {"_": None, "gettext": None, "N_": None}
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]


def N_(message: str) -> str:
    """Mark a string for the catalogue; translated where it is shown."""
    return message


def po_path(locale: str, area: str = "messages") -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{area}.po"


def po_files(locale: str) -> list[Path]:
    """The .po files of one locale, shared pages first."""
    return sorted(
        (LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po"), key=lambda p: (p.stem != "messages", p.stem)
    )


@cache
def messages(locale: str) -> dict[str, str]:
    """msgid → msgstr of one locale, all its files together (an empty msgstr falls back to the msgid)."""
    table: dict[str, str] = {}
    for path in po_files(locale):
        with path.open("rb") as f:
            catalog = read_po(f, locale=locale)
        table.update(
            {str(m.id): str(m.string) for m in catalog if m.id and m.string and isinstance(m.id, str)}
        )
    return table


def translator(locale: str) -> Callable[[str], str]:
    table = messages(locale if locale in LOCALES else DEFAULT_LOCALE)

    def gettext(message: str) -> str:
        return table.get(message, message)

    return gettext


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie set by the language switch wins; without one, Chinese (the default)."""
    if cookie in LOCALES:
        return cookie  # type: ignore[return-value]
    return DEFAULT_LOCALE


def extract() -> Iterator[tuple[str, str, int]]:
    """(msgid, file, line) of every marked string in the templates and the console's Python code."""
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(HERE), METHOD_MAP, keywords=KEYWORDS
    ):
        if isinstance(message, str) and message:
            yield message, filename, lineno


def write_template() -> Catalog:
    catalog = Catalog(project="fanchaoxin", domain="messages")
    for message, filename, lineno in extract():
        catalog.add(message, locations=[(filename, lineno)])
    with (LOCALES_DIR / "messages.pot").open("wb") as f:
        write_po(f, catalog, omit_header=False, sort_output=True)
    return catalog


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    if sys.argv[1:] == ["extract"]:
        cat = write_template()
        print(f"{len(cat)} messages → {LOCALES_DIR / 'messages.pot'}")
