"""No plain personal identifiers in the server's logs (日志脱敏).

Identifier look-ups by GET carry the value in the query string, so uvicorn's access log would write
``GET /v1/lookup?type=resident_id&value=110101199003071233`` to disk. :class:`IdentifierMaskFilter`
rewrites every log record that goes through it: resident ID numbers (18 characters that look like
one), mainland mobile numbers (11 digits from ``1[3-9]``, with or without ``+86``/``86``/``0086``,
also percent-encoded ``%2B86``) and e-mail addresses (also ``%40``) in the record's message and
arguments are replaced by their display mask (:func:`fanchaoxin.core.identifiers.mask`) where the value
is a valid identifier, and by ``***`` where it only looks like one.

:func:`install` puts the filter on uvicorn's loggers and the root logger's handlers of this process;
:func:`uvicorn_log_config` is uvicorn's own logging configuration with the filter on its handlers, for
``uvicorn.run`` (it is handed to every worker process, where filters installed here would not exist).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, mask

__all__ = ["IdentifierMaskFilter", "install", "mask_text", "uvicorn_log_config"]

# Where a value starts: not inside a longer word or number, or right after a percent-escape (``%20``).
_START: Final = r"(?P<pre>%(?!2[Bb])[0-9A-Fa-f]{2}|(?<![0-9A-Za-z%]))"
_END: Final = r"(?![0-9A-Za-z])"
_RESIDENT_ID: Final = re.compile(
    # region (6 digits, the first not 0), birth date 18xx-20xx, sequence number (3), check character
    _START + r"(?P<v>[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx])" + _END
)
_PHONE: Final = re.compile(_START + r"(?P<v>(?:(?:\+|%2[Bb]|00)?86[ \-]?)?1[3-9]\d{9})" + _END)
_EMAIL: Final = re.compile(
    r"(?P<pre>)(?<![A-Za-z0-9._+\-])"
    r"(?P<v>[A-Za-z0-9._+\-]{1,64}(?:@|%40)(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,63})" + _END
)
_BLUNT: Final = "***"


def _masked(itype: IdentifierType, value: str) -> str:
    try:
        return mask(itype, value)
    except IdentifierError:
        return _BLUNT


def _mask_email(m: re.Match[str]) -> str:
    return m["pre"] + _masked(IdentifierType.email, m["v"].replace("%40", "@"))


def _mask_phone(m: re.Match[str]) -> str:
    value = re.sub(r"^%2[Bb]", "+", m["v"])
    # The mask reads "+86 138******78": no space inside a log field that other tools split on.
    return m["pre"] + _masked(IdentifierType.phone, value).replace(" ", "")


def _mask_resident_id(m: re.Match[str]) -> str:
    return m["pre"] + _masked(IdentifierType.resident_id, m["v"])


def mask_text(text: str) -> str:
    """``text`` with every resident ID, mobile number and e-mail address in it masked."""
    if not any(c.isdigit() for c in text) and "@" not in text and "%40" not in text:
        return text  # most log lines: nothing to look for
    text = _EMAIL.sub(_mask_email, text)
    text = _RESIDENT_ID.sub(_mask_resident_id, text)
    return _PHONE.sub(_mask_phone, text)


def _mask_arg(arg: object) -> object:
    # Only text is rewritten: numbers keep their type, which `%d` in the format needs.
    return mask_text(arg) if isinstance(arg, str) else arg


class IdentifierMaskFilter(logging.Filter):
    """Masks personal identifiers in a log record's message and arguments; never drops a record.

    The arguments keep their shape (uvicorn's access formatter unpacks them as a 5-tuple).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_mask_arg(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _mask_arg(v) for k, v in args.items()}
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


_FILTER: Final = IdentifierMaskFilter()
_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "fanchaoxin")


def install() -> None:
    """Mask identifiers in this process's logs: uvicorn's loggers (the access log's request lines, the
    error log) and whatever reaches the root logger's handlers. Idempotent.

    Filters on a logger survive uvicorn's own logging set-up (``dictConfig`` replaces handlers, not
    filters); a record logged by another library reaches the root handlers and is masked there.
    """
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    root = logging.getLogger()
    for target in (root, *root.handlers):
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`IdentifierMaskFilter` on its handlers, for
    ``uvicorn.run(log_config=...)``: every worker process configures its logging from it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["fcx_mask_identifiers"] = {"()": f"{__name__}.IdentifierMaskFilter"}
    for handler in config.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), "fcx_mask_identifiers"]
    return config
