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

Structured logs (#23)
---------------------
Every line carries the request id of what caused it (:data:`REQUEST_ID_HEADER`, kept in a context
variable by ``core.requestid`` for an HTTP request, by :func:`request_context` for a job run or a sync),
so that one id can be followed from the public form through the change feed, the webhook outbox and the
enterprise node's sync to its answers. ``FCX_LOG_FORMAT`` chooses the shape: ``json`` (one object per
line: ``time`` ISO-8601 UTC, ``level``, ``logger``, ``message``, ``request_id``, then the record's extra
fields), ``text`` (one readable line, the request id in brackets) or ``auto`` (the default: text on a
terminal, JSON otherwise — what a log collector reads). Identifiers are masked in either, in the message,
its arguments, the extra fields and the traceback.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeGuard

from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, mask
from fanchaoxin.core.settings import get_settings

__all__ = [
    "REQUEST_ID_HEADER",
    "IdentifierMaskFilter",
    "JsonFormatter",
    "RequestIdFilter",
    "current_request_id",
    "install",
    "job_request_id",
    "logging_config",
    "mask_text",
    "request_context",
    "uvicorn_log_config",
    "well_formed_request_id",
]

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
# Every pattern above needs a digit (\d: any decimal digit, as in the patterns), "@" or "%40".
_WORTH_A_LOOK: Final = re.compile(r"\d|@|%40")


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
    if _WORTH_A_LOOK.search(text) is None:
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
        record.fcx_masked = True  # the JSON formatter need not mask the message again
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


# --- request ids -----------------------------------------------------------------------------------------

REQUEST_ID_HEADER: Final = "X-Request-ID"
# What an incoming id may be: a proxy's or a client's own (uuid, ULID, "job-…"), never a place to smuggle
# text into the logs. 64 characters at most: feed_events.request_id keeps it.
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_CURRENT: ContextVar[str | None] = ContextVar("fcx_request_id", default=None)


def well_formed_request_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    return os.urandom(16).hex()  # a uuid4's randomness, without building the UUID (the node's hot path)


def job_request_id(name: str) -> str:
    """The id of one run of a background job (``job-<name>-<uuid hex>``): the changes it makes have no
    request, and their lines are followed by this id instead."""
    rid = f"job-{name}-{new_request_id()}"
    if not well_formed_request_id(rid):
        raise ValueError(f"job name {name!r} makes no well-formed request id")
    return rid


def current_request_id() -> str | None:
    """The request id of what runs now (an HTTP request, a job run, a sync), None outside any."""
    return _CURRENT.get()


def enter_request(request_id: str) -> Token[str | None]:
    """Make ``request_id`` (well-formed: the caller checked) the current one; undo with
    :func:`leave_request`. For the request middleware, where :func:`request_context` costs too much."""
    return _CURRENT.set(request_id)


def leave_request(token: Token[str | None]) -> None:
    _CURRENT.reset(token)


@contextmanager
def request_context(request_id: str | None = None) -> Iterator[str]:
    """Run the block under ``request_id`` (a new one when None). Threads started through
    ``asyncio.to_thread`` or Starlette's thread pool inherit it (they copy the context)."""
    rid = request_id if well_formed_request_id(request_id) else new_request_id()
    token = _CURRENT.set(rid)
    try:
        yield rid
    finally:
        _CURRENT.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (``-`` outside a request); an ``extra={"request_id": …}`` given
    by the caller wins (a node's line about a platform change names the platform's request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _CURRENT.get() or "-"
        return True


# --- the JSON lines -------------------------------------------------------------------------------------

# What every LogRecord has: the rest of its __dict__ came through ``extra=`` and is written as fields.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
    "fcx_masked",
}
_ACCESS_FIELDS: Final = ("client", "method", "path", "http_version", "status")


def _masked_value(value: object) -> object:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {str(k): _masked_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_text(str(value))


def _message_of(record: logging.LogRecord) -> str:
    message = record.getMessage()
    return message if getattr(record, "fcx_masked", False) else mask_text(message)


def _request_id_of(record: logging.LogRecord) -> str | None:
    # null, not the text format's "-", where the line belongs to no request
    rid = getattr(record, "request_id", None)
    return (rid if rid != "-" else None) or _CURRENT.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO-8601 UTC, milliseconds), ``level``, ``logger``, ``message``,
    ``request_id``, the record's extra fields, ``exception`` (the traceback) if any. Chinese stays readable
    (no ``\\u`` escapes). uvicorn's access lines get ``client``, ``method``, ``path``, ``http_version`` and
    ``status`` as fields too. Everything text is masked (:func:`mask_text`) whether or not the
    :class:`IdentifierMaskFilter` ran first."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message_of(record),
            "request_id": _request_id_of(record),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            out.update(zip(_ACCESS_FIELDS, (_masked_value(a) for a in record.args), strict=True))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = _masked_value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = mask_text(record.exc_text)
        if record.stack_info:
            out["stack"] = mask_text(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


LogFormat = Literal["json", "text"]
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def resolve_format(setting: str | None = None) -> LogFormat:
    """``FCX_LOG_FORMAT`` (or ``setting``) as json or text; ``auto``: text on a terminal, else JSON."""
    if setting is None:
        setting = get_settings().log_format
    if setting == "auto":
        return "text" if sys.stderr.isatty() else "json"
    if setting not in ("json", "text"):
        raise ValueError(f"FCX_LOG_FORMAT must be auto, json or text, not {setting!r}")
    return setting  # type: ignore[return-value]


_FILTERS: Final = {
    "fcx_mask_identifiers": {"()": f"{__name__}.IdentifierMaskFilter"},
    "fcx_request_id": {"()": f"{__name__}.RequestIdFilter"},
}


def logging_config(fmt: str | None = None, *, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` of a process (a command, a node): ``fanchaoxin`` at ``level`` and the
    root logger (other libraries, WARNING) on stderr in the chosen format (``fmt``, else
    ``FCX_LOG_FORMAT``), masking identifiers and stamping the request id. No server stack imported."""
    json_lines = resolve_format(fmt) == "json"
    formatter = "fcx_json" if json_lines else "fcx_text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": copy.deepcopy(_FILTERS),
        "formatters": {
            "fcx_json": {"()": f"{__name__}.JsonFormatter"},
            "fcx_text": {"format": _TEXT},
        },
        "handlers": {
            "fcx": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "stream": "ext://sys.stderr",
                "filters": list(_FILTERS),
            }
        },
        "loggers": {"fanchaoxin": {"handlers": ["fcx"], "level": level.upper(), "propagate": False}},
        "root": {"handlers": ["fcx"], "level": "WARNING"},
    }


def uvicorn_log_config(fmt: str | None = None, *, level: str = "INFO") -> dict[str, Any]:
    """:func:`logging_config` with uvicorn's loggers (its error and access logs) in the same format, for
    ``uvicorn.run(log_config=...)``: every worker process configures its logging from it (filters
    installed in the parent would not exist there)."""
    from uvicorn.config import LOGGING_CONFIG

    config = logging_config(fmt, level=level)
    uvicorn = copy.deepcopy(LOGGING_CONFIG)
    if config["handlers"]["fcx"]["formatter"] == "fcx_json":
        for handler in uvicorn["handlers"].values():
            handler["formatter"] = "fcx_json"
    else:
        uvicorn["formatters"]["default"]["fmt"] = "%(levelprefix)s [%(request_id)s] %(message)s"
        uvicorn["formatters"]["access"]["fmt"] = (
            '%(levelprefix)s [%(request_id)s] %(client_addr)s - "%(request_line)s" %(status_code)s'
        )
        config["formatters"].update(uvicorn["formatters"])
    for handler in uvicorn["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), *_FILTERS]
    config["handlers"].update(uvicorn["handlers"])
    config["loggers"].update(uvicorn["loggers"])
    return config
