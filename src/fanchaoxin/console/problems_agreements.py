"""Sentences for the agreements problems (#22), merged into console.problems: codes → catalogue message ids,
and field names → words. Their msgids live in locales/*/LC_MESSAGES/agreements.po."""

from __future__ import annotations

from fanchaoxin.console.i18n import N_  # noqa: F401  (used as sentences are added)

MESSAGES: dict[str, str] = {}
FIELDS: dict[str, str] = {}
