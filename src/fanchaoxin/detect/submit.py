"""Send detector findings to the platform as candidate blacklist entries (`fcx detect … --submit`).

A finding is a candidate (detect/findings.py): submitting it makes one entry per suspected subject,
basis `enterprise_finding`, status `submitted`, for the platform's reviewers to decide on. Nothing
here publishes anything.

**Mapping a finding to entries (`EntryIn`).**

- One entry per subject id of the finding, with `behaviours = [finding.behaviour]`, severity
  `--severity` (default `minor`) and the finding's time span as `occurred_from` / `occurred_to`.
- Identifiers are never invented. `platform_account` → `<--account-namespace>:<account id>`;
  `courier_staff` → the id as given when it already is `<company USCC>:<staff number>`, else
  `<--courier-uscc>:<id>`; `courier_company` → the id when it is a valid USCC. Anything else
  (a `review` subject, a bad id, a missing namespace) is skipped with a message saying what is missing.
- Roles (`ROLE_RULES`): order-brushing — the shop (first id) is the organizer, its buyers participants;
  empty-parcel — a sender is the organizer, a courier a facilitator providing logistics, single
  waybills are not submitted (their sender- and courier-level findings aggregate them);
  review-deletion — the merchant is the organizer, a deletion-service account a facilitator;
  subsidy-brushing — a driver account sharing a phone or wallet with the ring's riders is the
  organizer, the other accounts participants; every other detector's accounts are participants (a
  ring's members; who runs it is not in the data).
- `facts`: a Chinese + English summary — behaviour, detector, the subject's role and position, the
  score, the finding's summary line, the key evidence numbers and the subject's own numbers — and a
  submission key line (below). At most 20,000 characters.
- Evidence: the finding as UTF-8 JSON, sent as `text/plain`, named `finding-<n>.json` (n: the
  finding's 1-based position in the command's output).

**Idempotency.** Each entry's key is `fcx-detect-` + the digest of (the digest of the finding's
canonical JSON, the subject's kind and identifier), under the crypto profile (SHA-256, or SM3 under
`gm`; #18). It goes out as the `Idempotency-Key` header and
is written into the last line of `facts`. Before sending anything, the caller's `enterprise_finding`
entries are listed (`GET /v1/entries`; one sees the facts of one's own entries) and entries whose
key is already there are not sent again, whichever way they were first sent. Re-running the same
detection therefore creates nothing; evidence already attached is not duplicated (the platform
stores evidence by its digest per entry). A changed `--severity` does not change the key: an entry
already submitted is reported with the severity it has on the platform and left alone.

**Two ways to send.** Up to `BULK_THRESHOLD` (200) entries: one `POST /v1/entries` each (the answer
gives the entry id), then `POST /v1/evidence/{id}` with the finding's JSON. More entries: JSON Lines
files to `POST /v1/uploads` (`all_or_nothing=false`; files of at most `UPLOAD_CHUNK_ROWS` rows and
`UPLOAD_CHUNK_BYTES` bytes, each with its own digest as Idempotency-Key). Uploads give no entry
ids, so no evidence files are attached: the facts carry an excerpt of the finding's JSON instead.

**Failures.** A refused entry (422, 409, 404 …) is reported with the platform's per-field messages and
the rest go on; a refused key (401/403), a server error (5xx) or an unreachable platform stops the
submission with a `SubmitError` (one line). The CLI exits non-zero whenever anything was refused.

Which way is decided by the number of entries the findings make (those already on the platform
included), so that a re-run goes the same way.

The HTTP client is injectable: anything with httpx.Client's `request` and a base URL (tests pass
FastAPI's TestClient, bound to the platform app in-process). httpx is imported only when needed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx
import typer

from fanchaoxin.core import crypto
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.identifiers import IdentifierError, normalise
from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.options import Severity, check_options
from fanchaoxin.detect.report import BEHAVIOUR_ZH, dumps

__all__ = [
    "BULK_THRESHOLD",
    "Candidate",
    "Outcome",
    "Severity",
    "Skip",
    "SubmitError",
    "SubmitReport",
    "cli_submit",
    "finding_json",
    "identifier_for",
    "prepare",
    "submission_key",
    "submit_findings",
]

BULK_THRESHOLD = 200  # more entries than this go as JSON Lines uploads, without evidence files
UPLOAD_CHUNK_ROWS = 10_000  # rows per upload file (the platform takes up to 100,000)
UPLOAD_CHUNK_BYTES = 16 * 1024 * 1024  # bytes per upload file (the platform takes up to 64 MiB)
FACTS_MAX = 20_000  # EntryIn.facts
NAME_MAX = 200  # SubjectIn.name
KEY_PREFIX = "fcx-detect-"
_KEY_RE = re.compile(r"fcx-detect-[0-9a-f]{64}")
_KEY_LINE = "提交标识 / submission key: "
_TERMINAL = frozenset({"rejected", "expired", "revoked", "repaired"})  # no more evidence accepted
_EXCERPT_MAX = 4_000  # evidence JSON in the facts of uploaded entries (repeated for every subject)


class SubmitError(Exception):
    """The submission as a whole cannot go on (bad key, platform down or unreachable): one line."""


# --- what a finding becomes -------------------------------------------------------------------------

_ROLE_ZH = {"organizer": "组织者", "participant": "参与者", "facilitator": "帮助者"}


@dataclass(frozen=True)
class RoleRule:
    role: str
    label: str  # what the subject is in the finding, zh / en
    services: tuple[str, ...] = ()


def _brushing_roles(f: Finding, i: int) -> RoleRule | str:
    if i == 0:
        return RoleRule("organizer", "刷单店铺 / the brushing shop")
    return RoleRule("participant", "刷单买家 / a buyer in the brushing windows")


def _parcel_roles(f: Finding, i: int) -> RoleRule | str:
    level = f.evidence.get("level")
    if level == "sender":
        return RoleRule("organizer", "空包裹寄件人 / sender of the empty parcels")
    if level == "courier":
        return RoleRule("facilitator", "揽收空包裹的快递 / courier of the empty parcels", ("logistics",))
    return (
        "a single waybill is not submitted: its sender and courier are, through the sender- and "
        "courier-level findings that aggregate the waybills (单张运单不报送)"
    )


def _participants(f: Finding, i: int) -> RoleRule | str:
    return RoleRule("participant", "团伙成员 / member of the group")


def _deletion_roles(f: Finding, i: int) -> RoleRule | str:
    # the merchant wants the reviews gone; a 删差评 service is paid to make it happen
    if f.evidence.get("level") == "service":
        return RoleRule("facilitator", "删差评服务账号 / deletion-service account")
    return RoleRule("organizer", "删除差评的商家 / merchant getting negative reviews removed")


def _subsidy_roles(f: Finding, i: int) -> RoleRule | str:
    # a driver account that shares a phone or wallet with the ring's rider accounts collects the fares
    # and bonuses: one person on both sides of the trips
    sid = str(f.subject_ids[i])
    one_person = any(
        sid in shared.get("accounts", ()) and sorted(shared.get("roles", ())) == ["driver", "rider"]
        for shared in f.evidence.get("shared", ())
    )
    if one_person and sid in f.evidence.get("drivers", ()):
        return RoleRule("organizer", "骗补司机账号 / driver account sharing a device or wallet with the ring")
    return RoleRule("participant", "骗补团伙成员 / member of the subsidy-brushing ring")


ROLE_RULES: dict[str, Callable[[Finding, int], RoleRule | str]] = {
    "order-brushing": _brushing_roles,
    "empty-parcel": _parcel_roles,
    "review-deletion": _deletion_roles,
    "subsidy-brushing": _subsidy_roles,
}
"""detector → (finding, position of the subject id) → its role, or why it is not submitted."""


def identifier_for(
    kind: str, subject_id: str, *, namespace: str | None, courier_uscc: str | None = None
) -> tuple[dict[str, str] | None, str]:
    """The platform identifier of one subject (type, canonical value), or None and what is missing."""

    def check(itype: str, value: str, what: str) -> tuple[dict[str, str] | None, str]:
        try:
            return {"type": itype, "value": normalise(itype, value)}, ""
        except IdentifierError as exc:
            return None, f"{what}: {exc}"

    if kind == "platform_account":
        if not namespace:
            return None, (
                "a platform_account identifier is <namespace>:<account id>: give --account-namespace "
                "(your platform's code, e.g. taobao)"
            )
        return check("platform_account", f"{namespace}:{subject_id}", "not a usable platform account id")
    if kind == "courier_staff":
        company, colon, _ = subject_id.partition(":")
        if colon and company:
            return check("courier_staff", subject_id, "not <company USCC>:<staff number>")
        if not courier_uscc:
            return None, (
                "a courier_staff identifier is <company USCC>:<staff number>: the id is a staff number only, "
                "give --courier-uscc (the courier company's unified social credit code)"
            )
        return check("courier_staff", f"{courier_uscc}:{subject_id}", "not <company USCC>:<staff number>")
    if kind == "courier_company":
        ident, why = check("uscc", subject_id, "a courier_company needs its USCC as id")
        return ident, why
    return None, (
        f"subject kind {kind!r} cannot be listed from this finding (no platform identifier for it); "
        "for review templates rerun with --author-col so that findings name the accounts"
    )


def finding_json(finding: Finding, **kw: Any) -> str:
    return dumps(finding.to_dict(), **kw)


def _finding_digest(finding: Finding) -> str:
    canonical = finding_json(finding, sort_keys=True, separators=(",", ":"))
    return crypto.active().hexdigest(canonical.encode())


def _key(finding_digest: str, kind: str, identifier: dict[str, str]) -> str:
    subject = f"{kind}\x00{identifier['type']}\x00{identifier['value']}"
    return KEY_PREFIX + crypto.active().hexdigest(f"{finding_digest}\x00{subject}".encode())


def submission_key(finding: Finding, kind: str, identifier: dict[str, str]) -> str:
    """`fcx-detect-` + the profile's digest of (the digest of the finding's canonical JSON, the subject).

    The same finding and subject always give the same key; hashing the finding once keeps findings with
    thousands of subjects linear.
    """
    return _key(_finding_digest(finding), kind, identifier)


class _Shared:
    """What the entries of one finding share, computed once per finding."""

    def __init__(self, finding: Finding) -> None:
        self.finding = finding
        self.digest = _finding_digest(finding)
        self.key_evidence = _key_evidence(finding.evidence)
        self._json: str | None = None
        self._compact: str | None = None
        self._rows: dict[str, dict[str, dict[str, Any]]] | None = None

    @property
    def compact(self) -> str:
        """The finding's JSON on one line (the excerpt in the facts of uploaded entries)."""
        if self._compact is None:
            self._compact = finding_json(self.finding)
        return self._compact

    @property
    def json(self) -> str:
        """The evidence file's text (and the excerpt of uploaded entries)."""
        if self._json is None:
            self._json = finding_json(self.finding, indent=1)
        return self._json

    def subject_lines(self, subject_id: str) -> list[str]:
        """The subject's own numbers: `{id: n}` maps and `[{…id…, n}]` lists naming it."""
        if self._rows is None:  # list name → value → first row holding it
            self._rows = {}
            for k, v in self.finding.evidence.items():
                if isinstance(v, list):
                    index: dict[str, dict[str, Any]] = {}
                    for item in v:
                        if isinstance(item, dict):
                            for x in item.values():
                                if isinstance(x, str | int):
                                    index.setdefault(str(x), item)
                    if index:
                        self._rows[k] = index
        out = []
        for k, v in self.finding.evidence.items():
            if isinstance(v, dict) and isinstance(v.get(subject_id), int | float | str):
                out.append(f"- {k}[{subject_id}]: {_fmt_num(v[subject_id])}")
            elif k in self._rows and subject_id in self._rows[k]:
                item = self._rows[k][subject_id]
                rest = ", ".join(f"{a}={b}" for a, b in item.items() if str(b) != subject_id)
                if rest:
                    out.append(f"- {k}: {rest}")
        return out


@dataclass
class Candidate:
    """One entry to submit: one subject of one finding."""

    finding_no: int  # 1-based position in the command's findings
    finding: Finding
    shared: _Shared
    subject_id: str
    identifier: dict[str, str]
    rule: RoleRule
    key: str
    body: dict[str, Any]  # EntryIn as JSON
    evidence_name: str

    @property
    def label(self) -> str:
        return f"finding {self.finding_no} subject {self.identifier['value']}"


@dataclass
class Skip:
    finding_no: int
    subject_id: str | None  # None: the whole finding
    reason: str

    @property
    def where(self) -> str:
        who = f" subject {self.subject_id!r}" if self.subject_id is not None else ""
        return f"finding {self.finding_no}{who}"

    def line(self) -> str:
        return f"skipped {self.where}: {self.reason}"


def _skip_lines(skips: Sequence[Skip], shown: int = 5) -> list[str]:
    """One line per reason: a waybill detector can skip thousands of subjects for the same reason."""
    by_reason: dict[str, list[Skip]] = {}
    for sk in skips:
        by_reason.setdefault(sk.reason, []).append(sk)
    out = []
    for reason, group in by_reason.items():
        if len(group) == 1:
            out.append(group[0].line())
            continue
        where = ", ".join(sk.where for sk in group[:shown])
        more = f" and {len(group) - shown} more" if len(group) > shown else ""
        out.append(f"skipped {len(group)} ({where}{more}): {reason}")
    return out


def _fmt_num(v: float) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _key_evidence(evidence: dict[str, Any]) -> list[str]:
    lines = []
    for k, v in evidence.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float) and not (isinstance(v, float) and not math.isfinite(v)):
            lines.append(f"- {k}: {_fmt_num(v)}")
        elif isinstance(v, str) and len(v) <= 80:
            lines.append(f"- {k}: {v}")
        elif isinstance(v, list | tuple):
            lines.append(f"- {k}: {len(v)} 项 / items")
        elif isinstance(v, dict):
            small = all(isinstance(x, int | float | str) and len(str(x)) <= 40 for x in v.values())
            if small and len(v) <= 6:
                inner = ", ".join(f"{a}={_fmt_num(b) if not isinstance(b, str) else b}" for a, b in v.items())
                lines.append(f"- {k}: {inner}")
            else:
                lines.append(f"- {k}: {len(v)} 项 / entries")
    return lines


def _facts(c: Candidate, *, excerpt: bool) -> str:
    f = c.finding
    zh = BEHAVIOUR_ZH.get(f.behaviour, f.behaviour)
    head = [
        "【企业监测发现（候选，待平台审核）/ Enterprise monitoring finding (candidate for review)】",
        f"行为 / behaviour: {zh} {f.behaviour}",
        f"检测方法 / detector: {f.detector}（第 {c.finding_no} 项发现 / finding #{c.finding_no}，"
        f"证据文件 / evidence file {c.evidence_name}）",
        f"本主体 / this subject: {f.subject_kind} {c.identifier['value']} — "
        f"{_ROLE_ZH[c.rule.role]} {c.rule.role}（{c.rule.label}）",
        f"评分 / score: {_fmt_num(f.score)}（检测方法自有尺度，越高越可疑 / detector-specific, higher is "
        "more suspicious）",
        f"摘要 / summary: {f.summary}",
    ]
    others = len(f.subject_ids)
    if others > 1:
        shown = ", ".join(f.subject_ids[:20]) + (" …" if others > 20 else "")
        head.append(f"本发现涉及主体 / subjects in this finding: {others}（{shown}）")
    body = ["关键证据 / key evidence:", *c.shared.key_evidence]
    mine = c.shared.subject_lines(c.subject_id)
    if mine:
        body += ["本主体的证据 / this subject's evidence:", *mine]
    tail = f"{_KEY_LINE}{c.key}"
    text = "\n".join(head + body)
    if excerpt:
        raw = c.shared.compact
        cut = raw if len(raw) <= _EXCERPT_MAX else raw[:_EXCERPT_MAX] + " …（已截断 / truncated）"
        text += "\n证据（发现的 JSON）/ evidence (the finding's JSON):\n" + cut
    room = FACTS_MAX - len(tail) - 1
    if len(text) > room:
        text = text[: room - 20] + "\n…（已截断 / truncated）"
    return f"{text}\n{tail}"


_START_KEYS = ("first_seen", "first_registered", "pickup_time", "window_start", "start", "time")
_END_KEYS = ("last_seen", "last_registered", "sign_time", "pickup_time", "window_end", "end", "time")


def _day(v: Any) -> date | None:
    if isinstance(v, str) and len(v) >= 10:
        try:
            return datetime.fromisoformat(v[:10]).date()
        except ValueError:
            return None
    return None


def _span(evidence: dict[str, Any]) -> tuple[date | None, date | None]:
    """When the activity happened, from the evidence's times (windows included); never in the future."""
    starts = [d for k in _START_KEYS if (d := _day(evidence.get(k)))]
    ends = [d for k in _END_KEYS if (d := _day(evidence.get(k)))]
    for w in evidence.get("windows") or []:
        if isinstance(w, dict):
            starts += [d for d in [_day(w.get("start"))] if d]
            ends += [d for d in [_day(w.get("end"))] if d]
    today = china_today()
    lo = min(starts, default=None)
    hi = max(ends + starts, default=None)
    lo = lo if lo and lo <= today else None
    hi = hi if hi and hi <= today else None
    if lo and hi and hi < lo:
        hi = None
    return lo, hi


def brushed_orders(f: Finding, sid: str) -> int | None:
    """How many fake orders an order-brushing finding puts on this subject: all the shop's brushing
    orders for the shop, each buyer's own for a buyer. The platform's measure 5 deducts the credit points
    they earned (one per order) unless the enterprise states the points itself."""
    if f.behaviour != "order_brushing":
        return None
    ev = f.evidence
    if str(ev.get("shopid")) == sid and isinstance(ev.get("order_ids"), list):
        return len(ev["order_ids"]) or None
    for user in ev.get("suspicious_users") or []:
        if str(user.get("userid")) == sid and isinstance(user.get("orders"), int):
            return int(user["orders"]) or None
    return None


def prepare(
    findings: Sequence[Finding],
    *,
    namespace: str | None,
    severity: str = Severity.minor,
    min_score: float | None = None,
    courier_uscc: str | None = None,
) -> tuple[list[Candidate], list[Skip], int]:
    """Findings → (entries to submit, what was skipped and why, how many findings were below min_score)."""
    candidates: list[Candidate] = []
    skips: list[Skip] = []
    below = 0
    seen: set[str] = set()
    for n, f in enumerate(findings, 1):
        if min_score is not None and not f.score >= min_score:
            below += 1
            continue
        if not f.subject_ids:
            skips.append(Skip(n, None, "the finding names no subject"))
            continue
        rules = ROLE_RULES.get(f.detector, _participants)
        shared = _Shared(f)
        lo, hi = _span(f.evidence)
        evidence_name = f"finding-{n}.json"
        for i, sid in enumerate(f.subject_ids):
            sid = str(sid)
            rule = rules(f, i)
            if isinstance(rule, str):
                skips.append(Skip(n, sid, rule))
                continue
            ident, why = identifier_for(f.subject_kind, sid, namespace=namespace, courier_uscc=courier_uscc)
            if ident is None:
                skips.append(Skip(n, sid, why))
                continue
            key = _key(shared.digest, f.subject_kind, ident)
            if key in seen:  # the same id twice in one finding
                continue
            seen.add(key)
            body: dict[str, Any] = {
                "subject": {
                    "kind": f.subject_kind,
                    "name": ident["value"][:NAME_MAX],
                    "identifiers": [ident],
                },
                "behaviours": [f.behaviour],
                "role": rule.role,
                "severity": str(severity),
                "basis": "enterprise_finding",
            }
            if rule.services:
                body["services"] = list(rule.services)
            orders = brushed_orders(f, sid)
            if orders:
                body["gains"] = {"brushed_orders": orders}
            if lo:
                body["occurred_from"] = lo.isoformat()
            if hi:
                body["occurred_to"] = hi.isoformat()
            candidates.append(Candidate(n, f, shared, sid, ident, rule, key, body, evidence_name))
    return candidates, skips, below


# --- talking to the platform --------------------------------------------------------------------------


@dataclass
class Outcome:
    candidate: Candidate
    status: str  # created | replayed | existing | refused
    entry_id: str | None = None
    messages: list[str] = field(default_factory=list)
    evidence: str = "none"  # attached | refused | closed (the entry takes no more) | none
    platform_severity: str | None = None


@dataclass
class SubmitReport:
    findings: int = 0
    below_min_score: int = 0
    mode: str = "none"  # entries | upload | none
    skipped: list[Skip] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, *statuses: str) -> int:
        return sum(1 for o in self.outcomes if o.status in statuses)

    @property
    def submitted(self) -> int:
        """Entries sent in this run (already-present ones are not sent again)."""
        return self.count("created", "replayed", "refused")

    @property
    def accepted(self) -> int:
        return self.count("created", "replayed")

    @property
    def refused(self) -> int:
        return self.count("refused")

    @property
    def evidence_refused(self) -> int:
        return sum(1 for o in self.outcomes if o.evidence == "refused")

    @property
    def ok(self) -> bool:
        return self.refused == 0 and self.evidence_refused == 0

    def lines(self) -> list[str]:
        considered = self.findings - self.below_min_score
        head = f"submit: {considered} finding(s)"
        if self.below_min_score:
            head += f" ({self.below_min_score} more below the minimum score, not sent)"
        via = {"entries": "one by one", "upload": "as JSON Lines uploads"}.get(self.mode, "nothing sent")
        if self.outcomes and not self.submitted:
            via = "nothing new to send"
        out = [
            f"{head}; {len(self.outcomes)} entr{'y' if len(self.outcomes) == 1 else 'ies'}, {via}",
            f"submitted {self.submitted}, accepted {self.accepted}, already on the platform "
            f"{self.count('existing')}, skipped {len(self.skipped)}, refused {self.refused}"
            + (
                f"; with the evidence file {sum(1 for o in self.outcomes if o.evidence == 'attached')}"
                if self.mode == "entries"
                else ""
            ),
        ]
        out += _skip_lines(self.skipped)
        for o in self.outcomes:
            if o.status == "refused":
                out.append(f"refused {o.candidate.label}: " + "; ".join(o.messages))
            elif o.evidence == "refused":
                out.append(
                    f"evidence refused for {o.candidate.label} (entry {o.entry_id}): " + "; ".join(o.messages)
                )
            elif (
                o.status == "existing"
                and o.platform_severity
                and o.platform_severity != o.candidate.body["severity"]
            ):
                out.append(
                    f"note: {o.candidate.label} was already submitted (entry {o.entry_id}) with severity "
                    f"{o.platform_severity}; left as it is"
                )
        return out


def _problem(resp: httpx.Response) -> list[str]:
    """The platform's messages: `detail`, then `field: message` (with the row) for every error."""
    try:
        body = resp.json()
    except ValueError:
        return [f"HTTP {resp.status_code}: {resp.text[:200].strip() or resp.reason_phrase}"]
    if not isinstance(body, dict):
        return [f"HTTP {resp.status_code}"]
    msgs = [f"HTTP {resp.status_code} {body.get('detail') or body.get('title') or ''}".strip()]
    for e in body.get("errors") or []:
        if isinstance(e, dict):
            where = str(e.get("field") or "")
            if e.get("row") is not None:
                where = f"row {e['row']} {where}".strip()
            msgs.append(f"{where}: {e.get('message')}" if where else str(e.get("message")))
    return msgs


def _upload_files(todo: list[Candidate]) -> Iterable[tuple[list[Candidate], bytes]]:
    """JSON Lines files of at most UPLOAD_CHUNK_ROWS rows and UPLOAD_CHUNK_BYTES bytes."""
    chunk: list[Candidate] = []
    lines: list[bytes] = []
    size = 0
    for c in todo:
        line = json.dumps({**c.body, "facts": _facts(c, excerpt=True)}, ensure_ascii=False).encode() + b"\n"
        if chunk and (len(chunk) >= UPLOAD_CHUNK_ROWS or size + len(line) > UPLOAD_CHUNK_BYTES):
            yield chunk, b"".join(lines)
            chunk, lines, size = [], [], 0
        chunk.append(c)
        lines.append(line)
        size += len(line)
    if chunk:
        yield chunk, b"".join(lines)


class _Platform:
    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, url: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        try:
            resp = self.client.request(method, url, headers=headers, **kw)
        except httpx.TransportError as exc:
            base = getattr(self.client, "base_url", "")
            raise SubmitError(f"platform unreachable at {base}: {exc.__class__.__name__}: {exc}") from exc
        if resp.status_code in (401, 403):
            raise SubmitError(
                f"the platform refused the API key ({'; '.join(_problem(resp))}); "
                "use an enterprise_operator key (--key or FCX_API_KEY)"
            )
        if resp.status_code >= 500:
            raise SubmitError(f"the platform failed: {'; '.join(_problem(resp))}")
        return resp

    def existing(self) -> dict[str, dict[str, Any]]:
        """Submission keys already in the caller's `enterprise_finding` entries → (id, status, severity)."""
        found: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"basis": "enterprise_finding", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            resp = self.call("GET", "/v1/entries", params=params)
            if resp.status_code != 200:
                raise SubmitError("could not list your entries: " + "; ".join(_problem(resp)))
            try:
                page = resp.json()
            except ValueError:
                page = None
            if not isinstance(page, dict):
                raise SubmitError(
                    "the answer to GET /v1/entries is not the platform's JSON: check --platform"
                )
            for e in page.get("entries", []):
                for k in _KEY_RE.findall(e.get("facts") or ""):
                    found.setdefault(k, e)
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def evidence(self, o: Outcome) -> None:
        c = o.candidate
        data = c.shared.json.encode("utf-8")
        resp = self.call(
            "POST",
            f"/v1/evidence/{o.entry_id}",
            files={"file": (c.evidence_name, data, "text/plain; charset=utf-8")},
        )
        if resp.status_code in (200, 201):
            o.evidence = "attached"
        else:
            o.evidence = "refused"
            o.messages = _problem(resp)

    def one_by_one(self, todo: list[Candidate], existing: list[Outcome]) -> list[Outcome]:
        out = []
        for c in todo:
            body = {**c.body, "facts": _facts(c, excerpt=False)}
            resp = self.call("POST", "/v1/entries", json=body, headers={"Idempotency-Key": c.key})
            if resp.status_code in (200, 201):
                replayed = resp.headers.get("Idempotent-Replayed") == "true"
                o = Outcome(c, "replayed" if replayed else "created", str(resp.json().get("id")))
                self.evidence(o)
            else:
                o = Outcome(c, "refused", messages=_problem(resp))
            out.append(o)
        for o in existing:  # a run cut short may have left an entry without its evidence
            if o.evidence == "none" and o.entry_id and o.status == "existing":
                self.evidence(o)
        return out

    def upload(self, todo: list[Candidate]) -> list[Outcome]:
        out = []
        for chunk, data in _upload_files(todo):
            key = KEY_PREFIX + "upload-" + crypto.active().hexdigest(data)
            resp = self.call(
                "POST",
                "/v1/uploads",
                params={"all_or_nothing": "false"},
                files={"file": ("findings.jsonl", data, "application/jsonl")},
                headers={"Idempotency-Key": key},
            )
            try:
                body = resp.json()
            except ValueError:
                body = {}
            if resp.status_code in (200, 201, 422) and isinstance(body, dict) and "batch_id" in body:
                by_row: dict[int, list[str]] = {}
                for e in body.get("errors") or []:
                    by_row.setdefault(int(e.get("row") or 0), []).append(
                        f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
                    )
                replayed = resp.headers.get("Idempotent-Replayed") == "true"
                nothing = body.get("accepted") == 0 or 0 in by_row  # 0: an error naming no row
                why = by_row.get(0) or ["not imported: the platform accepted no row of this file"]
                for row, c in enumerate(chunk, 1):
                    if row in by_row:
                        out.append(Outcome(c, "refused", messages=by_row[row]))
                    elif nothing:
                        out.append(Outcome(c, "refused", messages=why))
                    else:
                        out.append(Outcome(c, "replayed" if replayed else "created"))
            else:  # the file as a whole was refused
                msgs = _problem(resp)
                out += [Outcome(c, "refused", messages=msgs) for c in chunk]
        return out


def submit_findings(
    findings: Sequence[Finding],
    *,
    client: Any,
    key: str,
    namespace: str | None = None,
    severity: str = Severity.minor,
    min_score: float | None = None,
    courier_uscc: str | None = None,
    bulk_threshold: int = BULK_THRESHOLD,
) -> SubmitReport:
    """Submit `findings` to the platform behind `client` (an httpx.Client with the platform's base URL)."""
    candidates, skips, below = prepare(
        findings, namespace=namespace, severity=severity, min_score=min_score, courier_uscc=courier_uscc
    )
    report = SubmitReport(findings=len(findings), below_min_score=below, skipped=skips)
    if not candidates:
        return report
    platform = _Platform(client, key)
    known = platform.existing()
    existing: list[Outcome] = []
    todo: list[Candidate] = []
    for c in candidates:
        e = known.get(c.key)
        if e is None:
            todo.append(c)
        else:
            o = Outcome(c, "existing", str(e.get("id")), platform_severity=e.get("severity"))
            if e.get("status") in _TERMINAL:
                o.evidence = "closed"  # a closed entry takes no more evidence
            existing.append(o)
    report.mode = "entries" if len(candidates) <= bulk_threshold else "upload"
    if report.mode == "entries":
        sent = platform.one_by_one(todo, existing)
    else:
        sent = platform.upload(todo) if todo else []
    by_key = {o.candidate.key: o for o in [*sent, *existing]}
    report.outcomes = [by_key[c.key] for c in candidates]
    return report


# --- the CLI side ---------------------------------------------------------------------------------------


def open_client(url: str) -> AbstractContextManager[Any]:
    """An HTTP client for the platform at `url` (tests replace this with the in-process app's client)."""
    return httpx.Client(base_url=url, timeout=60.0, follow_redirects=False)


def cli_submit(
    findings: Iterable[Finding],
    *,
    platform: str | None,
    key: str | None,
    namespace: str | None,
    severity: str,
    min_score: float | None,
    courier_uscc: str | None = None,
) -> SubmitReport:
    """Submit, print the report on stderr; exit 1 when anything was refused or the platform failed."""
    check_options(True, platform, key)
    assert platform is not None and key is not None
    try:
        with open_client(platform.rstrip("/")) as client:
            report = submit_findings(
                list(findings),
                client=client,
                key=key,
                namespace=namespace,
                severity=severity,
                min_score=min_score,
                courier_uscc=courier_uscc,
            )
    except SubmitError as exc:
        typer.echo(f"submit error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(1) from None
    for line in report.lines():
        typer.echo(line, err=True)
    if not report.ok:
        raise typer.Exit(1)
    return report
