"""Self-contained reports of detector findings: one HTML file and one JSON file.

The HTML report has no scripts, no web fonts and no external references of any kind (not even
XML namespace URLs: HTML5 parsers do not need them) — it must open on
an analyst's machine inside an enterprise network that reaches nothing outside (and must not leak
that it was opened). Charts are inline SVG drawn here: findings per behaviour (炒信行为), a score
histogram and a timeline of when the suspected activity happened. The markup is also well-formed
XML, so it can be checked and post-processed with any XML tool.

The JSON file is ``{"title", "generated_at", "meta", "counts", "findings": [Finding.to_dict(), …]}``.

Times in evidence: the timeline reads the first of the evidence keys ``first_seen``, ``time``,
``window_start``, ``start``, ``pickup_time``, ``first_registered`` that holds a
``YYYY-MM-DD[ HH:MM:SS]`` string. Detectors that want a timeline put one of them in their evidence.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from fanchaoxin.core.spreadsheet import safe_row
from fanchaoxin.detect.findings import Finding

CHARTS = ("behaviours", "scores", "timeline")
TIME_KEYS = ("first_seen", "time", "window_start", "start", "pickup_time", "first_registered")

BEHAVIOUR_ZH = {
    "malicious_registration": "恶意注册",
    "order_brushing": "刷单炒信",
    "fake_review": "虚假评价",
    "review_deletion": "删除不利评价",
    "subsidy_brushing": "刷单骗补",
    "personal_data_trade": "泄露倒卖个人信息",
    "empty_parcel": "合谋寄递空包裹",
}

_CSS = """
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;margin:2em;
color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.86em;width:100%}
th,td{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}.chart{border:1px solid #eee;padding:.5em}
pre{white-space:pre-wrap;word-break:break-all;font-size:.85em;margin:0;max-height:20em;overflow:auto}
.muted{color:#777}.note{background:#fff8e1;padding:.5em;border-left:3px solid #f0b400}
"""


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, datetime | date):
        return obj.isoformat(sep=" ") if isinstance(obj, datetime) else obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj) if isinstance(obj, set | frozenset) else list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, **kw: Any) -> str:
    """JSON that also accepts numpy scalars/arrays, datetimes, sets and paths (evidence often has them)."""
    return json.dumps(obj, ensure_ascii=False, default=_json_default, **kw)


def finding_time(f: Finding) -> datetime | None:
    """When the suspected activity of a finding happened, from its evidence (see TIME_KEYS)."""
    for key in TIME_KEYS:
        v = f.evidence.get(key)
        if isinstance(v, str) and len(v) >= 10:
            try:
                return datetime.fromisoformat(v[:19])
            except ValueError:
                continue
    return None


# ----------------------------------------------------------------------------------------- charts


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _fmt_num(v: float) -> str:
    if v == int(v) and abs(v) < 1e9:
        return f"{int(v):,}"
    return f"{v:.3g}"


def bar_chart_h(items: Sequence[tuple[str, float]], *, title: str, width: int = 520) -> str:
    """Horizontal bars, one per label (used for counts per behaviour)."""
    bar_h, gap, left, top = 20, 6, 190, 28
    height = top + len(items) * (bar_h + gap) + 10
    vmax = max((v for _, v in items), default=0) or 1
    body = [f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (label, v) in enumerate(items):
        y = top + i * (bar_h + gap)
        w = (width - left - 60) * v / vmax
        body.append(
            f'<text x="{left - 6}" y="{y + 14}" font-size="12" text-anchor="end">{escape(label)}</text>'
        )
        body.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#c0392b"/>')
        body.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="12">{_fmt_num(v)}</text>')
    return _svg(width, height, body, title)


def column_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    x_title: str = "",
    width: int = 560,
    height: int = 240,
    label_every: int | None = None,
) -> str:
    """Vertical bars with a y axis (used for the score histogram and the timeline)."""
    left, right, top, bottom = 48, 12, 28, 42
    pw, ph = width - left - right, height - top - bottom
    n = max(len(values), 1)
    vmax = _nice_max(max(values, default=0))
    bw = pw / n
    body = [f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    # 5 grid steps when the maximum is 1, 5 or 10 × 10^k (whole steps for counts), else 4
    lead = round(vmax / 10 ** math.floor(math.log10(vmax)), 3)
    steps = 5 if lead in (1.0, 5.0, 10.0) else 4
    for k in range(steps + 1):
        v = vmax * k / steps
        y = top + ph - ph * k / steps
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt_num(v)}</text>'
        )
    every = label_every or max(1, math.ceil(n / 12))
    for i, v in enumerate(values):
        h = ph * v / vmax
        x = left + i * bw
        body.append(
            f'<rect x="{x + 1:.1f}" y="{top + ph - h:.1f}" width="{max(bw - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="#2c6fbb"><title>{escape(labels[i])}: {_fmt_num(v)}</title></rect>'
        )
        if i % every == 0:
            body.append(
                f'<text x="{x + bw / 2:.1f}" y="{top + ph + 14}" font-size="10" '
                f'text-anchor="middle">{escape(labels[i])}</text>'
            )
    body.append(f'<line x1="{left}" y1="{top + ph}" x2="{width - right}" y2="{top + ph}" stroke="#999"/>')
    if x_title:
        body.append(
            f'<text x="{left + pw / 2:.1f}" y="{height - 6}" font-size="11" '
            f'text-anchor="middle">{escape(x_title)}</text>'
        )
    return _svg(width, height, body, title)


def _score_histogram(findings: Sequence[Finding], bins: int = 20) -> str:
    scores = np.array([f.score for f in findings], dtype=float)
    scores = scores[np.isfinite(scores)]
    if len(scores) == 0:
        return ""
    lo, hi = float(scores.min()), float(scores.max())
    if hi == lo:
        hi = lo + 1.0
    counts, edges = np.histogram(scores, bins=bins, range=(lo, hi))
    labels = [f"{edges[i]:.3g}" for i in range(bins)]
    return column_chart(
        labels, counts.tolist(), title="Score histogram 分数分布", x_title="score (lower edge)"
    )


def _timeline(findings: Sequence[Finding]) -> str:
    days = Counter(t.date() for f in findings if (t := finding_time(f)) is not None)
    if not days:
        return ""
    first, last = min(days), max(days)
    n = (last - first).days + 1
    if n > 400:  # weekly bins past a year so the bars stay readable
        weeks: Counter[date] = Counter()
        for d, c in days.items():
            weeks[date.fromordinal(d.toordinal() - d.weekday())] += c
        keys = sorted(weeks)
        return column_chart(
            [k.isoformat() for k in keys],
            [weeks[k] for k in keys],
            title="Findings per week 每周线索数",
            x_title="week",
        )
    keys = [date.fromordinal(first.toordinal() + i) for i in range(n)]
    return column_chart(
        [k.strftime("%m-%d") for k in keys],
        [days.get(k, 0) for k in keys],
        title="Findings per day 每日线索数",
        x_title="day the suspected activity started",
    )


# ----------------------------------------------------------------------------------------- report


def _subjects(ids: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(str(x) for x in ids[:limit])
    return shown + (f" … (+{len(ids) - limit})" if len(ids) > limit else "")


def render_html(
    findings: Sequence[Finding],
    *,
    title: str,
    charts: Iterable[str] = CHARTS,
    meta: Mapping[str, Any] | None = None,
    max_rows: int = 500,
    generated_at: str = "",
) -> str:
    """The HTML text of a report (see write_report)."""
    ranked = sorted(findings, key=lambda f: -f.score if math.isfinite(f.score) else math.inf)
    by_beh = Counter(f.behaviour for f in findings)
    by_det = Counter(f.detector for f in findings)
    out = [
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"/>',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">Generated {escape(generated_at)} · {len(findings):,} findings (线索) · '
        f"detectors: {escape(', '.join(f'{k} ({v:,})' for k, v in sorted(by_det.items())) or '—')}</p>",
        '<p class="note">Findings are candidates for review, not conclusions: an enterprise reviews them '
        "before reporting any subject to the platform (线索仅供核查，不是认定结论).</p>",
    ]
    if meta:
        out.append("<h2>Run 运行参数</h2><table><tbody>")
        for k, v in meta.items():
            val = v if isinstance(v, str) else dumps(v)
            out.append(f"<tr><th>{escape(str(k))}</th><td>{escape(val)}</td></tr>")
        out.append("</tbody></table>")
    wanted = list(charts)
    unknown = [c for c in wanted if c not in CHARTS]
    if unknown:
        raise ValueError(f"unknown chart(s) {unknown}; choose from {CHARTS}")
    svgs = []
    if "behaviours" in wanted and findings:
        svgs.append(
            bar_chart_h(
                [(f"{b} {BEHAVIOUR_ZH.get(b, '')}", v) for b, v in by_beh.most_common()],
                title="Findings per behaviour 各类行为线索数",
            )
        )
    if "scores" in wanted and findings:
        svgs.append(_score_histogram(findings))
    if "timeline" in wanted and findings:
        svgs.append(_timeline(findings) or '<p class="muted">No times in the evidence: no timeline.</p>')
    if svgs:
        out.append('<h2>Charts 图表</h2><div class="charts">')
        out.extend(f'<div class="chart">{s}</div>' for s in svgs if s)
        out.append("</div>")
    out.append(f"<h2>Findings 线索 (top {min(max_rows, len(ranked)):,} of {len(ranked):,} by score)</h2>")
    if not ranked:
        out.append("<p>No findings. 未发现可疑线索。</p>")
    else:
        out.append(
            "<table><thead><tr><th>#</th><th>detector</th><th>behaviour 行为</th><th>subject kind</th>"
            "<th>subjects 主体</th><th>score</th><th>summary 摘要</th><th>evidence 证据</th></tr></thead>"
            "<tbody>"
        )
        for i, f in enumerate(ranked[:max_rows], 1):
            ev = dumps(f.evidence, indent=1)
            if len(ev) > 4000:
                ev = ev[:4000] + "\n… (truncated; full evidence in the JSON report)"
            out.append(
                f'<tr><td class="num">{i}</td><td>{escape(f.detector)}</td>'
                f"<td>{escape(f.behaviour)}<br/>{escape(BEHAVIOUR_ZH.get(f.behaviour, ''))}</td>"
                f"<td>{escape(f.subject_kind)}</td><td>{escape(_subjects(f.subject_ids))}</td>"
                f'<td class="num">{f.score:.4g}</td><td>{escape(f.summary)}</td>'
                f"<td><details><summary>show</summary><pre>{escape(ev)}</pre></details></td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</body></html>\n")
    return "".join(out)


def write_report(
    findings: Sequence[Finding],
    *,
    title: str,
    html_path: str | Path | None,
    json_path: str | Path | None,
    charts: Iterable[str] = CHARTS,
    meta: Mapping[str, Any] | None = None,
    max_rows: int = 500,
) -> None:
    """Write the HTML report and/or the JSON findings file (either path may be None to skip it).

    `charts` picks among ``behaviours``, ``scores``, ``timeline``; `meta` is shown as a table of run
    parameters and copied into the JSON; the HTML lists the `max_rows` highest-scoring findings
    (the JSON always has them all).
    """
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if html_path is not None:
        p = Path(html_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(
            render_html(
                findings, title=title, charts=charts, meta=meta, max_rows=max_rows, generated_at=generated
            ),
            encoding="utf-8",
        )
    if json_path is not None:
        p = Path(json_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "title": title,
            "generated_at": generated,
            "meta": dict(meta or {}),
            "counts": dict(Counter(f.behaviour for f in findings)),
            "findings": [f.to_dict() for f in findings],
        }
        p.write_text(dumps(doc, indent=1), encoding="utf-8")


FINDINGS_COLUMNS = (
    "level",
    "detector",
    "behaviour",
    "subject_kind",
    "subject_ids",
    "score",
    "summary",
    "evidence",
)


def write_findings(
    path: str | Path, findings: Sequence[Finding], meta: Mapping[str, Any], *, default_level: str = ""
) -> None:
    """A command's findings to `path`: CSV (one row per finding, the evidence as JSON) or JSON, by the suffix.

    Written to ``<path>.part`` and renamed, so a half-written answer never sits under the real name.
    `default_level` fills the ``level`` column for findings whose evidence names none.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        if path.suffix.lower() == ".csv":
            with part.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(FINDINGS_COLUMNS)
                for f in findings:
                    level = f.evidence.get("level", default_level)
                    row = [level, f.detector, f.behaviour, f.subject_kind, ";".join(f.subject_ids)]
                    # ids and summaries come from the input data: no cell may open as a formula
                    w.writerow(safe_row([*row, f.score, f.summary, dumps(f.evidence)]))
        else:
            doc = {**meta, "count": len(findings), "findings": [f.to_dict() for f in findings]}
            part.write_text(dumps(doc, indent=1), encoding="utf-8")
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
