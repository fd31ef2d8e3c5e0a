"""Benchmark of bulk uploads (批量报送): `.venv/bin/python -m bench.bench_uploads --rows 100000`.

Generates a realistic CSV of blacklist entries (valid USCCs and resident IDs with their check
characters, Chinese names and facts, a mix of subject kinds, liable persons for companies), parses it
with `parse_upload` and prints rows/s as the median of `--runs` runs, with a breakdown of where the
time goes (decoding + CSV reading, building rows, `EntryIn` validation alone, duplicate keys).

Options: --rows N (default 100,000), --runs R (default 3), --seed S, --encoding utf-8|utf-8-sig|gbk,
--chinese-headers, --xlsx N / --jsonl N (also time those formats on N rows; 0 = skip).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pydantic

from fanchaoxin.blacklist import uploads as U
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.identifiers import org_code_check_char, resident_id_check_digit, uscc_check_char

_USCC_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_REGIONS = [
    "110101",
    "110105",
    "310104",
    "310115",
    "440305",
    "440106",
    "330106",
    "320102",
    "510107",
    "420106",
]
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红春梅海燕文斌宇浩然欣怡子轩梓涵"
_COMPANY_WORDS = [
    "云上",
    "鑫达",
    "华创",
    "星辰",
    "优品",
    "汇通",
    "博远",
    "聚力",
    "天合",
    "信诚",
    "易购",
    "速达",
]
_INDUSTRY = ["电子商务", "网络科技", "信息技术", "贸易", "文化传媒", "供应链管理", "物流"]
_CITIES = ["北京", "上海", "深圳", "广州", "杭州", "南京", "成都", "武汉"]
_FACT_PARTS = [
    "经平台监测发现，该主体在{start}至{end}期间",
    "通过组织刷手群实施虚假交易{n}笔",
    "利用批量注册的账号发布虚假好评{n}条",
    "以返现方式诱导消费者删除差评{n}条",
    "与寄递企业合谋寄递空包裹{n}件以伪造物流记录",
    "虚构网约车订单骗取平台补贴{n}元",
    "非法获取并倒卖消费者个人信息{n}条",
    "涉案金额约{n}元，情节较重",
    "已于调查中承认上述事实。",
]
_BEHAVIOURS = [
    "order_brushing",
    "fake_review",
    "review_deletion",
    "malicious_registration",
    "subsidy_brushing",
    "personal_data_trade",
    "empty_parcel",
]
_SERVICES = ["account", "data", "technical", "logistics", "funding", "information_spreading"]
_AUTHORITIES = [
    "上海市市场监督管理局",
    "杭州市市场监督管理局",
    "深圳市市场监督管理局",
    "北京市海淀区人民法院",
]

HEADER = [
    "subject_kind",
    "subject_name",
    "uscc",
    "resident_id",
    "phone",
    "domain",
    "app",
    "platform_account",
    "social_account",
    "device",
    "courier_staff",
    "waybill_prefix",
    "behaviours",
    "role",
    "services",
    "severity",
    "basis",
    "document_number",
    "issuing_authority",
    "document_date",
    "occurred_from",
    "occurred_to",
    "facts",
    "legal_representative_name",
    "legal_representative_resident_id",
    "legal_representative_phone",
    "principal_name",
    "principal_resident_id",
    "principal_phone",
]


def make_uscc(rng: random.Random) -> str:
    org = "".join(rng.choice(_USCC_BODY) for _ in range(8))
    first17 = rng.choice("159") + rng.choice("123") + rng.choice(_REGIONS) + org + org_code_check_char(org)
    return first17 + uscc_check_char(first17)


def make_resident_id(rng: random.Random) -> str:
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(40 * 365))
    first17 = rng.choice(_REGIONS) + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
    return first17 + resident_id_check_digit(first17)


def make_phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + f"{rng.randrange(10**9):09d}"


def person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def company_name(rng: random.Random, industry: str | None = None) -> str:
    return (
        rng.choice(_CITIES)
        + "".join(rng.sample(_COMPANY_WORDS, 2))
        + (industry or rng.choice(_INDUSTRY))
        + "有限公司"
    )


def make_row(rng: random.Random, i: int) -> dict[str, str]:
    row = dict.fromkeys(HEADER, "")
    kind = rng.choices(
        ["unit", "individual", "platform_account", "website", "app", "social_account", "courier_company",
         "courier_staff"],
        weights=[30, 30, 15, 5, 5, 5, 5, 5],
    )[0]  # fmt: skip
    row["subject_kind"] = kind
    if kind == "unit":
        row["subject_name"] = company_name(rng)
        row["uscc"] = make_uscc(rng)
        if rng.random() < 0.4:
            row["phone"] = make_phone(rng)
    elif kind == "individual":
        row["subject_name"] = person_name(rng)
        row["resident_id"] = make_resident_id(rng)
        row["phone"] = make_phone(rng)
    elif kind == "platform_account":
        row["subject_name"] = f"店铺{i}"
        row["platform_account"] = (
            f"{rng.choice(['taobao', 'jd', 'pdd', 'meituan'])}:shop_{i}_{rng.randrange(10**6)}"
        )
        if rng.random() < 0.5:
            row["device"] = f"{rng.getrandbits(64):016x}".replace("9774d56d682e549c", "1774d56d682e549c")
        if rng.random() < 0.5:
            row["phone"] = make_phone(rng)
    elif kind == "website":
        row["subject_name"] = f"刷单网站{i}"
        row["domain"] = f"shuadan{i}.example.cn"
    elif kind == "app":
        row["subject_name"] = f"刷单应用{i}"
        row["app"] = f"com.example.brush{i}"
    elif kind == "social_account":
        row["subject_name"] = f"刷单群主{i}"
        row["social_account"] = f"{rng.choice(['weibo', 'wechat', 'douyin'])}:user_{i}"
    elif kind == "courier_company":
        row["subject_name"] = company_name(rng, "快递")
        row["uscc"] = make_uscc(rng)
        row["waybill_prefix"] = f"K{i}"
    else:
        row["subject_name"] = person_name(rng)
        row["courier_staff"] = f"{make_uscc(rng)}:SF{i:06d}"
        row["resident_id"] = make_resident_id(rng)
    row["behaviours"] = ";".join(rng.sample(_BEHAVIOURS, rng.choice((1, 1, 2, 3))))
    role = rng.choices(["organizer", "participant", "facilitator"], weights=[3, 5, 2])[0]
    row["role"] = role
    if role == "facilitator":
        row["services"] = ";".join(rng.sample(_SERVICES, rng.choice((1, 2))))
    row["severity"] = rng.choice(["minor", "general", "serious"])
    basis = rng.choices(
        ["enterprise_finding", "administrative_penalty", "judicial_decision"], weights=[6, 3, 1]
    )[0]
    row["basis"] = basis
    start = date(2022, 1, 1) + timedelta(days=rng.randrange(700))
    end = start + timedelta(days=rng.randrange(1, 120))
    row["occurred_from"] = start.isoformat()
    row["occurred_to"] = end.isoformat()
    if basis != "enterprise_finding":
        row["document_number"] = f"沪市监处〔{end.year}〕{rng.randrange(1, 9999)}号"
        row["issuing_authority"] = rng.choice(_AUTHORITIES)
        row["document_date"] = (end + timedelta(days=30)).strftime("%Y/%m/%d")
    parts = [_FACT_PARTS[0], *rng.sample(_FACT_PARTS[1:-1], 2), _FACT_PARTS[-1]]
    row["facts"] = "，".join(parts).format(start=start, end=end, n=rng.randrange(10, 5000))
    if kind == "unit" and rng.random() < 0.5:
        row["legal_representative_name"] = person_name(rng)
        row["legal_representative_resident_id"] = make_resident_id(rng)
        if rng.random() < 0.5:
            row["principal_name"] = person_name(rng)
            row["principal_phone"] = make_phone(rng)
    return row


def generate_rows(n: int, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [make_row(rng, i) for i in range(n)]


def to_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header or HEADER)
    for r in rows:
        w.writerow([r[c] for c in HEADER])
    return out.getvalue()


def to_xlsx(rows: list[dict[str, str]]) -> bytes:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(HEADER)
    for r in rows:
        ws.append([r[c] or None for c in HEADER])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_jsonl(entries: list[EntryIn]) -> bytes:
    return "\n".join(e.model_dump_json(exclude_none=True) for e in entries).encode()


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, pydantic {pydantic.VERSION}"
    )


def timed(fn, runs: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Median wall time of `runs` calls and the last result; the CPU time is kept in `timed.cpu`."""
    times, cpu, result = [], [], None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    timed.cpu = statistics.median(cpu)  # type: ignore[attr-defined]
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--encoding", default="utf-8-sig", choices=["utf-8", "utf-8-sig", "gbk"])
    ap.add_argument("--chinese-headers", action="store_true")
    ap.add_argument("--xlsx", type=int, default=0, help="also time an XLSX file of this many rows")
    ap.add_argument("--jsonl", type=int, default=0, help="also time a JSON Lines file of this many rows")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    t = time.perf_counter()
    rows = generate_rows(args.rows, args.seed)
    header = [U.CHINESE_ALIASES.get(c, (c,))[0] for c in HEADER] if args.chinese_headers else HEADER
    content = to_csv(rows, header).encode(args.encoding)
    print(
        f"generated {args.rows:,} rows, {len(content) / 1e6:.1f} MB {args.encoding} CSV "
        f"in {time.perf_counter() - t:.1f} s; median of {args.runs} runs below"
    )

    n = args.rows
    total, parsed = timed(
        lambda: U.parse_upload(content, filename="entries.csv", media_type="text/csv", max_rows=max(n, 1)),
        args.runs,
    )
    assert isinstance(parsed, U.ParsedUpload)
    cpu = timed.cpu  # type: ignore[attr-defined]
    print(
        f"parse_upload (CSV):         {total:7.2f} s  {n / total:9,.0f} rows/s  "
        f"(CPU {cpu:.2f} s, {n / cpu:,.0f} rows per CPU-second; "
        f"{len(parsed.entries):,} valid, {len(parsed.errors):,} errors)"
    )
    print(f"  load average before the breakdown: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for e in parsed.errors[:5]:
        print(f"  unexpected error: {e}")

    # Breakdown, each step timed alone (with garbage collection paused, as parse_upload does).
    with U._gc_paused():
        text = content.decode(args.encoding)
        t_read, cells = timed(lambda: list(csv.reader(io.StringIO(text, newline=""))), 1)
        flat = U._Flattened(cells[0], 1)  # a benchmark may look inside
        t_build, built = timed(lambda: [flat.build(c).data for c in cells[1:]], 1)
        assert isinstance(built, list)
        t_valid, entries = timed(lambda: [EntryIn.model_validate(d) for d in built], 1)
        assert isinstance(entries, list)
        t_key, _ = timed(lambda: [U._dedup_key(e) for e in entries], 1)
        print(f"  decode + csv.reader:      {t_read:7.2f} s")
        print(f"  build nested dicts:       {t_build:7.2f} s")
        print(
            f"  EntryIn.model_validate:   {t_valid:7.2f} s  {n / t_valid:9,.0f} rows/s  "
            f"({t_valid / n * 1e6:.0f} µs/row)"
        )
        print(f"  duplicate keys:           {t_key:7.2f} s")

    if args.xlsx:
        data = to_xlsx(rows[: args.xlsx])
        t_x, px = timed(
            lambda: U.parse_upload(data, filename="e.xlsx", media_type=None, max_rows=args.xlsx), 1
        )
        assert isinstance(px, U.ParsedUpload)
        print(
            f"parse_upload (XLSX):        {t_x:7.2f} s  {args.xlsx / t_x:9,.0f} rows/s  "
            f"({len(data) / 1e6:.1f} MB, {len(px.errors)} errors)"
        )
    if args.jsonl:
        data = to_jsonl([e for _, e in parsed.entries[: args.jsonl]])
        t_j, pj = timed(
            lambda: U.parse_upload(data, filename="e.jsonl", media_type=None, max_rows=args.jsonl), 1
        )
        assert isinstance(pj, U.ParsedUpload)
        print(
            f"parse_upload (JSON Lines):  {t_j:7.2f} s  {args.jsonl / t_j:9,.0f} rows/s  "
            f"({len(data) / 1e6:.1f} MB, {len(pj.errors)} errors)"
        )


if __name__ == "__main__":
    main()
