"""Identifier rules (标识符规则): the one place in the platform where they live.

Every identifier goes through the same pipeline before it is stored, compared, tagged for the
shared feed (the OPRF input is ``"<type>:<canonical value>"``) or shown:

1. **normalise** — NFKC (full-width 全角 → ASCII half-width), drop invisible characters, strip the
   spaces and separators that carry no meaning for the type, fix the case;
2. **validate** — every rule of the type, each failure an :class:`IdentifierError` naming its
   ``rule`` (a stable code such as ``uscc.check_char``); nothing is ever silently accepted;
3. return the **canonical value**, the only form kept anywhere.

Canonical forms (see each ``_normalise_*`` function for the details):

=================== ============================================= =================================
type                canonical form                                example
=================== ============================================= =================================
``uscc``            18 upper-case chars (GB 32100-2015)           ``91110000600037341L``
``resident_id``     18 chars, upper-case ``X`` (GB 11643-1999)    ``11010519491231002X``
``phone``           E.164 ``+86`` + 11 digits, mainland mobile    ``+8613812345678``
``email``           all lower-case ``local@punycode-domain``      ``zhang.san@example.com``
``domain``          lower-case punycode host, no trailing dot     ``xn--fsqu00a.xn--fiqs8s``
``app``             lower-case reverse-DNS package id             ``com.example.shop``
``platform_account`` ``<enterprise>:<account id>``                ``taobao:Shop_123``
``social_account``  ``<platform>:<handle>``                       ``weibo:ZhangSan``
``device``          IMEI / Android ID / lower-case UUID           ``352099001761481``
``courier_staff``   ``<company USCC>:<staff number>``             ``91110000600037341L:SF001``
``waybill_prefix``  upper-case letters and digits                 ``SF``
=================== ============================================= =================================

Error messages never repeat the offending value: they end up in API responses, per-row upload
reports and logs, and the value may be a plain personal identifier.
"""

from __future__ import annotations

import encodings.idna
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, Final

from stdnum import imei as _stdnum_imei
from stdnum.exceptions import ValidationError as _StdnumValidationError

__all__ = [
    "RULES",
    "STRONG_TYPES",
    "Identifier",
    "IdentifierError",
    "IdentifierType",
    "is_valid",
    "mask",
    "mask_person_name",
    "normalise",
    "org_code_check_char",
    "resident_id_check_digit",
    "uscc_check_char",
    "validate",
]


class IdentifierType(StrEnum):
    """Kinds of identifier a subject (主体) can be known by."""

    uscc = "uscc"
    """统一社会信用代码 — unified social credit code of a legal person or other organisation."""
    resident_id = "resident_id"
    """居民身份证号码 — PRC resident identity card number (also 港澳台居民居住证 numbers)."""
    phone = "phone"
    """手机号码 — mainland China mobile number."""
    email = "email"
    """电子邮箱."""
    domain = "domain"
    """域名 — a website's host name."""
    app = "app"
    """移动应用包名 — mobile app package / bundle id, e.g. ``com.example.shop``."""
    platform_account = "platform_account"
    """平台账号 — an account on a participating enterprise's platform."""
    social_account = "social_account"
    """社交媒体账号 — a social media account (微博, 微信, 抖音 …)."""
    device = "device"
    """设备标识 — IMEI, Android ID, or a UUID-form id (IDFA, IDFV, OAID)."""
    courier_staff = "courier_staff"
    """寄递物流从业人员 — courier staff, known by the company's USCC and the staff number (工号)."""
    waybill_prefix = "waybill_prefix"
    """运单号前缀 — the prefix of a range of waybill numbers (运单号)."""


STRONG_TYPES: Final[frozenset[IdentifierType]] = frozenset(
    {
        IdentifierType.uscc,
        IdentifierType.resident_id,
        IdentifierType.phone,
        IdentifierType.platform_account,
        IdentifierType.social_account,
        IdentifierType.courier_staff,
        IdentifierType.email,
        IdentifierType.domain,
        IdentifierType.app,
        IdentifierType.device,
    }
)
"""Types that identify a subject on their own (entity resolution may merge on one of them).

``waybill_prefix`` is left out: a prefix names a range of waybills, shared by many senders.
"""


# --- rules and errors -----------------------------------------------------------------------------

_SPECIFIC_RULES: dict[str, tuple[str, str]] = {
    "type.unknown": ("unknown identifier type", "未知的标识符类型"),
    # 统一社会信用代码 (GB 32100-2015)
    "uscc.length": (
        "a unified social credit code has 18 characters",
        "统一社会信用代码应为18位",
    ),
    "uscc.charset": (
        "only digits and the capital letters ABCDEFGHJKLMNPQRTUWXY are allowed (no I, O, S, V, Z)",
        "只能包含数字和大写字母（不含 I、O、S、V、Z）",
    ),
    "uscc.region_code": (
        "characters 3-8 (administrative division code of the registration authority) must be digits",
        "第3-8位（登记管理机关行政区划码）必须为数字",
    ),
    "uscc.org_code_check": (
        "the organisation code in characters 9-17 (GB 11714) fails its own check character",
        "第9-17位主体标识码（组织机构代码，GB 11714）校验码错误",
    ),
    "uscc.check_char": (
        "the check character (18th character, MOD 31) does not match",
        "第18位校验码（MOD 31）错误",
    ),
    # 居民身份证号码 (GB 11643-1999)
    "resident_id.length": (
        "a resident ID number has 18 characters (15 for legacy numbers)",
        "居民身份证号码应为18位（旧版为15位）",
    ),
    "resident_id.charset": (
        "a resident ID number is 17 digits and a digit or X (legacy 15-character numbers: digits only)",
        "居民身份证号码应为17位数字加1位数字或X（旧版15位须全为数字）",
    ),
    "resident_id.region_code": (
        "the first two digits are not a province-level administrative division code",
        "前两位不是有效的省级行政区划代码",
    ),
    "resident_id.birth_date": (
        "the birth date (characters 7-14) is not a real date between 1900-01-01 and today",
        "出生日期码（第7-14位）无效：须为1900年1月1日至今天之间的真实日期",
    ),
    "resident_id.check_digit": (
        "the check digit (18th character, ISO 7064 MOD 11-2) does not match",
        "第18位校验码（ISO 7064 MOD 11-2）错误",
    ),
    # 手机号码
    "phone.charset": (
        "a phone number may only hold digits, a leading +, spaces, dashes, dots and parentheses",
        "手机号码只能包含数字、开头的+号、空格、连字符、点和括号",
    ),
    "phone.length": (
        "a mainland mobile number has 11 digits after the +86 country code",
        "大陆手机号码（不含+86）应为11位数字",
    ),
    "phone.not_mainland_mobile": (
        "not a mainland China mobile number (+86 1[3-9]…); landlines and other countries are refused",
        "不是中国大陆手机号码（+86 1[3-9]开头）；不接受固定电话和境外号码",
    ),
    # 电子邮箱
    "email.format": (
        "an e-mail address is local-part@domain, without spaces",
        "电子邮箱格式应为“用户名@域名”，且不含空格",
    ),
    "email.local_part": (
        "the part before @ must be 1-64 ASCII letters, digits or !#$%&'*+/=?^_`{|}~- with single dots "
        "between them",
        "@前的用户名须为1-64个ASCII字母、数字或 !#$%&'*+/=?^_`{|}~- ，点号只能出现在中间且不能相连",
    ),
    "email.domain": ("the part after @ is not a valid domain name", "@后的域名无效"),
    "email.length": ("an e-mail address may have at most 254 characters", "电子邮箱最长254个字符"),
    # 域名
    "domain.format": (
        "not a host name: no spaces, user names or non-numeric ports are allowed",
        "不是有效的主机名：不能包含空格、用户名或非数字端口",
    ),
    "domain.no_dot": (
        "a domain name needs at least two labels separated by a dot",
        "域名至少应有两级，以“.”分隔",
    ),
    "domain.label": (
        "each label must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen",
        "每一级须为1-63个字母、数字或连字符，且不能以连字符开头或结尾",
    ),
    "domain.idna": (
        "an internationalised label cannot be converted with IDNA (punycode)",
        "国际化域名标签无法进行IDNA（punycode）转换",
    ),
    "domain.tld": (
        "the top-level label must not be all digits (an IP address is not a domain name)",
        "顶级域不能全为数字（IP地址不是域名）",
    ),
    "domain.length": ("a domain name may have at most 253 characters", "域名最长253个字符"),
    # 应用包名
    "app.format": (
        "an app package id is reverse-DNS: at least two dot-separated segments, no spaces",
        "应用包名应为反向域名格式：至少两段，以“.”分隔，不含空格",
    ),
    "app.segment": (
        "each segment must start with a letter or digit and hold only letters, digits, _ and -",
        "每一段须以字母或数字开头，只能包含字母、数字、下划线和连字符",
    ),
    "app.length": ("an app package id may have at most 255 characters", "应用包名最长255个字符"),
    # 平台账号
    "platform_account.format": (
        "expected <enterprise>:<account id>",
        "格式应为“企业标识:账号”",
    ),
    "platform_account.namespace": (
        "the enterprise part must be 1-64 of a-z, 0-9, _ . - and start with a letter or digit",
        "企业标识须为1-64个小写字母、数字或 _ . - ，并以字母或数字开头",
    ),
    "platform_account.account": (
        "the account id must be 1-256 characters without whitespace or control characters",
        "账号须为1-256个字符，不能包含空白或控制字符",
    ),
    # 社交媒体账号
    "social_account.format": ("expected <platform>:<handle>", "格式应为“平台标识:账号”"),
    "social_account.namespace": (
        "the platform part must be 1-64 of a-z, 0-9, _ . - and start with a letter or digit",
        "平台标识须为1-64个小写字母、数字或 _ . - ，并以字母或数字开头",
    ),
    "social_account.handle": (
        "the handle must be 1-256 characters without whitespace or control characters",
        "账号须为1-256个字符，不能包含空白或控制字符",
    ),
    # 设备标识
    "device.format": (
        "not a recognised device id: IMEI (15 digits), Android ID (16 hex) or UUID/IDFA/OAID (32 hex)",
        "无法识别的设备标识：应为IMEI（15位数字）、Android ID（16位十六进制）"
        "或UUID/IDFA/OAID（32位十六进制）",
    ),
    "device.imei_length": (
        "an IMEI has 15 digits (14-digit bodies and 16-digit IMEISV are not accepted)",
        "IMEI应为15位数字（不接受14位无校验位的号码或16位IMEISV）",
    ),
    "device.imei_check_digit": (
        "the IMEI check digit (15th digit, Luhn) does not match",
        "IMEI第15位校验码（Luhn）错误",
    ),
    "device.placeholder": (
        "a placeholder device id (all zeros, all ones, emulator or known shared value) names no device",
        "占位设备标识（全零、全F、模拟器或已知共用值）不能标识具体设备",
    ),
    # 寄递物流从业人员
    "courier_staff.format": (
        "expected <company USCC>:<staff number>",
        "格式应为“企业统一社会信用代码:工号”",
    ),
    "courier_staff.company_uscc": (
        "the company part is not a valid unified social credit code",
        "企业部分不是有效的统一社会信用代码",
    ),
    "courier_staff.staff_no": (
        "the staff number must be 1-32 letters or digits",
        "工号须为1-32个字母或数字",
    ),
    # 运单号前缀
    "waybill_prefix.charset": (
        "a waybill prefix may only hold letters and digits",
        "运单号前缀只能包含字母和数字",
    ),
    "waybill_prefix.length": (
        "a waybill prefix has 1-20 characters",
        "运单号前缀应为1-20个字符",
    ),
}


def _generic_rules() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for t in IdentifierType:
        out[f"{t.value}.not_text"] = ("the value must be text (a string)", "取值必须是文本字符串")
        out[f"{t.value}.empty"] = ("the value is empty", "取值为空")
    return out


RULES: Final[Mapping[str, tuple[str, str]]] = {**_generic_rules(), **_SPECIFIC_RULES}
"""Every rule code → (English message, Chinese message). Codes are stable: clients match on them."""


class IdentifierError(ValueError):
    """An identifier failed a rule (标识符校验失败).

    ``type`` is the identifier type (``None`` only for ``type.unknown``), ``rule`` the stable rule
    code from :data:`RULES`, ``message`` / ``message_zh`` the English / Chinese explanation. The
    offending value is deliberately not kept.
    """

    def __init__(self, type: IdentifierType | None, rule: str, detail: str | None = None) -> None:
        en, zh = RULES[rule]
        self.type = type
        self.rule = rule
        self.detail = detail
        self.message = f"{en} ({detail})" if detail else en
        self.message_zh = zh
        label = type.value if type is not None else "identifier"
        super().__init__(f"{label}: {self.message} [rule {rule}]")

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction replays only str(self) into __init__; keep the real arguments so
        # the error survives pickling (worker processes, result backends).
        return (type(self), (self.type, self.rule, self.detail))

    @property
    def code(self) -> str:
        """The stable problem code of this failure (``identifier.uscc.length``), rendered in the
        reader's language by the console's catalogues."""
        return f"identifier.{self.rule}"

    @property
    def params(self) -> dict[str, Any]:
        """What the sentence for :attr:`code` may say: the identifier type, and the length found
        (``got``) or the position of a bad character where the rule reports one."""
        out: dict[str, Any] = {"type": self.type.value if self.type is not None else None}
        found = re.fullmatch(r"(got|position) (\d+)", self.detail or "")
        if found:
            out[found.group(1)] = int(found.group(2))
        return out

    def as_dict(self) -> dict[str, str | None]:
        return {
            "type": self.type.value if self.type is not None else None,
            "rule": self.rule,
            "message": self.message,
            "message_zh": self.message_zh,
        }


# --- shared normalisation -------------------------------------------------------------------------

# Invisible characters that copy-paste drags along; they never belong to an identifier, and left in
# they would make two spellings of one identifier look different.
_INVISIBLE: Final = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"), None)
# NFKC leaves the ideographic full stop alone; Chinese input methods type it for ".".
_DOTS: Final = {0x3002: "."}
# Separators people put in long numbers, including the dashes NFKC does not fold to "-".
_SEPARATORS: Final = re.compile(r"[\s\-_./\u2010-\u2015\u2212]+")
_PHONE_SEPARATORS: Final = re.compile(r"[\s\-_./()\u2010-\u2015\u2212]+")
_CHINA_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991


def _today() -> date:
    # Birth dates on ID cards are Beijing dates, so "today" is today in China, not on the server.
    return datetime.now(_CHINA_TZ).date()


def _prepare(t: IdentifierType, raw: object) -> str:
    if not isinstance(raw, str):
        # A phone number or ID that went through a JSON number has already lost leading zeros or
        # the X check digit; refusing is safer than guessing.
        raise IdentifierError(t, f"{t.value}.not_text")
    s = unicodedata.normalize("NFKC", raw).translate(_INVISIBLE).translate(_DOTS).strip()
    if not s:
        raise IdentifierError(t, f"{t.value}.empty")
    return s


def _compact(t: IdentifierType, raw: object, separators: re.Pattern[str] = _SEPARATORS) -> str:
    s = separators.sub("", _prepare(t, raw))
    if not s:
        raise IdentifierError(t, f"{t.value}.empty")
    return s


def _coerce_type(t: IdentifierType | str) -> IdentifierType:
    if isinstance(t, IdentifierType):
        return t
    try:
        return IdentifierType(t)
    except ValueError:
        raise IdentifierError(None, "type.unknown") from None


# --- USCC 统一社会信用代码 -----------------------------------------------------------------------------

_USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES: Final = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^i mod 31
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUES: Final = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}  # A=10 … Z=35


def uscc_check_char(first17: str) -> str:
    """统一社会信用代码校验码: the 18th character for the given first 17 (GB 32100-2015, MOD 31)."""
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """组织机构代码校验码: the 9th character for the given first 8 (GB 11714, MOD 11, 10 → X)."""
    total = sum(_ORG_VALUES[c] * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _normalise_uscc(raw: object) -> str:
    """统一社会信用代码: 18 characters, upper case, separators stripped.

    Layout: 登记管理部门码 (1) + 机构类别码 (1) + 登记管理机关行政区划码 (6 digits) + 主体标识码
    (组织机构代码, 9 incl. its GB 11714 check) + 校验码 (1). Letters are accepted in positions 1-2
    (e.g. ``N`` 农业, ``Y`` 其他, ``A`` 军队), which python-stdnum's ``cn.uscc`` wrongly refuses and which
    is why the check is written here; stdnum also skips the organisation-code check.
    """
    t = IdentifierType.uscc
    s = _compact(t, raw)
    if not s.isascii():
        raise IdentifierError(t, "uscc.charset")
    s = s.upper()
    if len(s) != 18:
        raise IdentifierError(t, "uscc.length", f"got {len(s)}")
    bad = [i + 1 for i, c in enumerate(s) if c not in _USCC_VALUES]
    if bad:
        raise IdentifierError(t, "uscc.charset", f"position {bad[0]}")
    if not s[2:8].isdigit():
        raise IdentifierError(t, "uscc.region_code")
    # Checked before the overall check character because it pins a typo down to characters 9-17.
    if org_code_check_char(s[8:16]) != s[16]:
        raise IdentifierError(t, "uscc.org_code_check")
    if uscc_check_char(s[:17]) != s[17]:
        raise IdentifierError(t, "uscc.check_char")
    return s


# --- resident ID 居民身份证号码 ------------------------------------------------------------------------

_RID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(17-i) mod 11
_RID_CHECK: Final = "10X98765432"
# GB/T 2260 province-level codes, plus 83 used by 台湾居民居住证 (81/82 serve 港澳 permits too).
# Foreigners' permanent residence cards (外国人永久居留身份证, leading 9) are a different document.
_PROVINCES: Final = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
        "65", "71", "81", "82", "83",
    }
)  # fmt: skip
_EARLIEST_BIRTH: Final = date(1900, 1, 1)


def resident_id_check_digit(first17: str) -> str:
    """居民身份证校验码: the 18th character for the given first 17 digits (ISO 7064 MOD 11-2)."""
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_CHECK[total % 11]


def _normalise_resident_id(raw: object) -> str:
    """居民身份证号码: 18 characters, check ``X`` upper case; 15-digit legacy numbers upgraded.

    Layout: 地址码 (6) + 出生日期码 (YYYYMMDD) + 顺序码 (3) + 校验码 (1). A legacy 15-digit number
    (一代证, YYMMDD, no check digit) becomes ``region + "19" + YYMMDD + sequence + check``, the official
    upgrade rule: every such number belongs to someone born in the 1900s. Only the province part of
    the region code is checked, since county codes change over time and old numbers keep old codes.
    """
    t = IdentifierType.resident_id
    s = _compact(t, raw)
    if not s.isascii():
        raise IdentifierError(t, "resident_id.charset")
    s = s.upper()
    if len(s) == 15:
        if not s.isdigit():
            raise IdentifierError(t, "resident_id.charset")
        body = s[:6] + "19" + s[6:]
        s = body + resident_id_check_digit(body)
        legacy = True
    elif len(s) == 18:
        if not (s[:17].isdigit() and (s[17].isdigit() or s[17] == "X")):
            raise IdentifierError(t, "resident_id.charset")
        legacy = False
    else:
        raise IdentifierError(t, "resident_id.length", f"got {len(s)}")
    if s[:2] not in _PROVINCES:
        raise IdentifierError(t, "resident_id.region_code")
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise IdentifierError(t, "resident_id.birth_date", "no such date") from None
    if born < _EARLIEST_BIRTH:
        raise IdentifierError(t, "resident_id.birth_date", "before 1900")
    if born > _today():
        raise IdentifierError(t, "resident_id.birth_date", "in the future")
    if not legacy and resident_id_check_digit(s[:17]) != s[17]:
        raise IdentifierError(t, "resident_id.check_digit")
    return s


# --- phone 手机号码 ------------------------------------------------------------------------------------

_DIGITS: Final = re.compile(r"[0-9]+")
_MOBILE_SECOND_DIGITS: Final = frozenset("3456789")


def _normalise_phone(raw: object) -> str:
    """手机号码: mainland mobile numbers only, canonical E.164 ``+86`` + 11 digits.

    The country code may come as ``+86``, ``0086`` or a bare ``86`` before 11 digits. Landlines
    (固定电话) and numbers of other countries or regions (including 港澳台) are refused: the platform
    keys individuals on mobile numbers, which are real-name registered (实名制).
    """
    t = IdentifierType.phone
    s = _compact(t, raw, _PHONE_SEPARATORS)
    if s.startswith("+"):
        s = s[1:]
        if not s.startswith("86"):
            if not _DIGITS.fullmatch(s):
                raise IdentifierError(t, "phone.charset")
            raise IdentifierError(t, "phone.not_mainland_mobile", "country code is not +86")
        s = s[2:]
    elif s.startswith("0086"):
        s = s[4:]
    elif s.startswith("86") and len(s) == 13:
        s = s[2:]
    if not s:
        raise IdentifierError(t, "phone.length", "got 0")
    if not _DIGITS.fullmatch(s):
        raise IdentifierError(t, "phone.charset")
    if not s.startswith("1"):
        raise IdentifierError(t, "phone.not_mainland_mobile")
    if len(s) != 11:
        raise IdentifierError(t, "phone.length", f"got {len(s)}")
    if s[1] not in _MOBILE_SECOND_DIGITS:
        raise IdentifierError(t, "phone.not_mainland_mobile")
    return "+86" + s


# --- domain 域名 ---------------------------------------------------------------------------------------

_SCHEME: Final = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_LDH_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")


def _domain_labels(t: IdentifierType, s: str) -> str:
    """Validate a bare host name and return its lower-case punycode form."""
    if any(c.isspace() for c in s):
        raise IdentifierError(t, "domain.format", "contains whitespace")
    if s.endswith("."):
        s = s[:-1]  # the DNS root: "example.com." and "example.com" are one name
    if not s:
        raise IdentifierError(t, "domain.empty")
    labels = s.split(".")
    if len(labels) < 2:
        raise IdentifierError(t, "domain.no_dot")
    out: list[str] = []
    for label in labels:
        if not label:
            raise IdentifierError(t, "domain.label", "empty label")
        if not label.isascii():
            try:
                # The standard library's IDNA 2003 (nameprep + punycode): deterministic on every
                # install, unlike an optional IDNA 2008 package; the two differ only on rare
                # characters such as ß and final sigma.
                label = encodings.idna.ToASCII(label).decode("ascii")
            except UnicodeError:
                raise IdentifierError(t, "domain.idna") from None
        label = label.lower()
        if not _LDH_LABEL.fullmatch(label):
            raise IdentifierError(t, "domain.label")
        if label.startswith("xn--"):
            try:
                encodings.idna.ToUnicode(label)
            except UnicodeError:
                raise IdentifierError(t, "domain.idna") from None
        out.append(label)
    if out[-1].isdigit():
        raise IdentifierError(t, "domain.tld")
    host = ".".join(out)
    if len(host) > 253:
        raise IdentifierError(t, "domain.length", f"got {len(host)}")
    return host


def _normalise_domain(raw: object) -> str:
    """域名: lower-case host name, internationalised labels (中文域名) in punycode.

    A pasted URL is reduced to its host: the scheme, path, query, fragment, port and a trailing
    dot are dropped. ``www.`` is kept, because ``www.example.com`` and ``example.com`` are different
    names and may belong to different subjects.
    """
    t = IdentifierType.domain
    s = _prepare(t, raw).lower()
    s = _SCHEME.sub("", s, count=1)
    s = re.split(r"[/?#]", s, maxsplit=1)[0]
    if "@" in s:
        raise IdentifierError(t, "domain.format", "contains a user name")
    host, colon, port = s.partition(":")
    if colon and not _DIGITS.fullmatch(port):
        raise IdentifierError(t, "domain.format", "bad port")
    return _domain_labels(t, host)


# --- e-mail 电子邮箱 -----------------------------------------------------------------------------------

_ATEXT: Final = r"[a-z0-9!#$%&'*+/=?^_`{|}~\-]+"
_LOCAL_PART: Final = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")


def _normalise_email(raw: object) -> str:
    """电子邮箱: ``local@domain``, all lower case, domain in punycode.

    The local part is lower-cased too. RFC 5321 lets a server treat it case-sensitively, but no
    mainstream provider (QQ, 163, 126, Sina, Gmail, Outlook …) does; one canonical spelling is what
    lets two enterprises' reports of one mailbox meet. Provider-specific folding (Gmail dots,
    ``+tag`` sub-addresses) is *not* done: it is guesswork about someone else's server. Only
    dot-atom local parts are accepted — no quoted strings, no non-ASCII (SMTPUTF8) local parts.
    """
    t = IdentifierType.email
    s = _prepare(t, raw)
    if any(c.isspace() for c in s):
        raise IdentifierError(t, "email.format", "contains whitespace")
    local, at, domain = s.rpartition("@")
    if not at or not local or not domain or "@" in local:
        raise IdentifierError(t, "email.format")
    if not local.isascii() or len(local) > 64:
        raise IdentifierError(t, "email.local_part")
    local = local.lower()
    if not _LOCAL_PART.fullmatch(local):
        raise IdentifierError(t, "email.local_part")
    try:
        host = _domain_labels(IdentifierType.email, domain.lower())
    except IdentifierError as exc:
        raise IdentifierError(t, "email.domain", exc.rule.split(".", 1)[1]) from exc
    value = f"{local}@{host}"
    if len(value) > 254:
        raise IdentifierError(t, "email.length", f"got {len(value)}")
    return value


# --- app 应用包名 --------------------------------------------------------------------------------------

_APP_SEGMENT: Final = re.compile(r"[a-z0-9][a-z0-9_\-]*")


def _normalise_app(raw: object) -> str:
    """移动应用包名: reverse-DNS package / bundle id, lower case.

    Android package names are case-sensitive in theory and iOS bundle ids are matched
    case-insensitively by Apple; the canonical form is lower case so that one app typed in two
    cases by two enterprises resolves to one subject (the collision of two real apps differing only
    in case is taken as negligible). Segments may hold ``_`` (Android) and ``-`` (iOS) and start with
    a digit (iOS, e.g. ``com.360buy.jdmobile``).
    """
    t = IdentifierType.app
    s = _prepare(t, raw)
    if any(c.isspace() for c in s):
        raise IdentifierError(t, "app.format", "contains whitespace")
    if not s.isascii():
        raise IdentifierError(t, "app.segment", "non-ASCII character")
    s = s.lower()
    if len(s) > 255:
        raise IdentifierError(t, "app.length", f"got {len(s)}")
    segments = s.split(".")
    if len(segments) < 2:
        raise IdentifierError(t, "app.format")
    if not all(_APP_SEGMENT.fullmatch(seg) for seg in segments):
        raise IdentifierError(t, "app.segment")
    return s


# --- namespaced accounts 平台账号 / 社交媒体账号 -------------------------------------------------

_NAMESPACE: Final = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")


def _free_text_ok(s: str) -> bool:
    # Bidi overrides and other format characters let one account id pose as another on screen.
    return 0 < len(s) <= 256 and not any(
        c.isspace() or unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in s
    )


def _split_namespaced(t: IdentifierType, raw: object) -> tuple[str, str]:
    s = _prepare(t, raw)
    ns, colon, rest = s.partition(":")
    if not colon:
        raise IdentifierError(t, f"{t.value}.format", "no ':' separator")
    ns = ns.strip().lower()
    if not _NAMESPACE.fullmatch(ns):
        raise IdentifierError(t, f"{t.value}.namespace")
    return ns, rest.strip()


def _normalise_platform_account(raw: object) -> str:
    """平台账号: ``<enterprise>:<account id>``.

    The enterprise part (the reporting enterprise's short code, e.g. ``taobao``) is lower-cased;
    the account id keeps its case, since platforms differ on whether ``Shop`` and ``shop`` are one
    account, and may hold Chinese characters and any punctuation except whitespace. Only the first
    ``:`` separates, so account ids may contain colons.
    """
    t = IdentifierType.platform_account
    ns, account = _split_namespaced(t, raw)
    if not _free_text_ok(account):
        raise IdentifierError(t, "platform_account.account")
    return f"{ns}:{account}"


def _normalise_social_account(raw: object) -> str:
    """社交媒体账号: ``<platform>:<handle>``, e.g. ``weibo:张三``, ``wechat:wxid_abc``.

    The platform part is lower-cased; one leading ``@`` of the handle is dropped (``@张三`` is how a
    handle is written in a post); the handle keeps its case, as for platform accounts.
    """
    t = IdentifierType.social_account
    ns, handle = _split_namespaced(t, raw)
    handle = handle.removeprefix("@")
    if not _free_text_ok(handle):
        raise IdentifierError(t, "social_account.handle")
    return f"{ns}:{handle}"


_STAFF_NO: Final = re.compile(r"[A-Z0-9]{1,32}")


def _normalise_courier_staff(raw: object) -> str:
    """寄递物流从业人员: ``<company USCC>:<staff number (工号)>``.

    The company part is a USCC under its own rules. The staff number is upper-cased and stripped of
    separators like a USCC: companies print 工号 as ``SF-001`` or ``SF 001`` interchangeably.
    """
    t = IdentifierType.courier_staff
    s = _prepare(t, raw)
    company, colon, staff = s.partition(":")
    if not colon:
        raise IdentifierError(t, "courier_staff.format", "no ':' separator")
    try:
        uscc = _normalise_uscc(company)
    except IdentifierError as exc:
        raise IdentifierError(t, "courier_staff.company_uscc", exc.rule) from exc
    staff = _SEPARATORS.sub("", staff)
    if not staff.isascii() or not _STAFF_NO.fullmatch(staff.upper()):
        raise IdentifierError(t, "courier_staff.staff_no")
    return f"{uscc}:{staff.upper()}"


# --- device 设备标识 -----------------------------------------------------------------------------------

_DEVICE_SEPARATORS: Final = re.compile(r"[\s\-_./:{}\u2010-\u2015\u2212]+")
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_HEX32: Final = re.compile(r"[0-9a-f]{32}")
_IMEI: Final = re.compile(r"[0-9]{15}")
# Values many devices report at once: merging on them would fuse unrelated people into one subject.
_DEVICE_PLACEHOLDERS: Final = frozenset(
    {
        "000000000000000",  # IMEI of devices without a modem, Luhn-valid
        "004999010640000",  # Android emulator IMEI
        "0000000000000000",
        "9774d56d682e549c",  # Android ID shared by many Android 2.2 devices
        "00000000-0000-0000-0000-000000000000",  # IDFA when the user has not allowed tracking
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    }
)


def _normalise_device(raw: object) -> str:
    """设备标识: three forms, told apart by length so no prefix is needed.

    * IMEI (国际移动设备识别码): 15 digits, Luhn check digit (python-stdnum ``imei``);
    * Android ID: 16 lower-case hex digits (taken as an Android ID even when all 16 are digits);
    * UUID form — IDFA, IDFV, UUID-shaped OAID (移动智能终端补充设备标识): lower-case
      ``8-4-4-4-12`` hex as RFC 9562 recommends; braces and a ``urn:uuid:`` prefix are dropped.

    MEID, MAC addresses, 64-hex OAIDs and IMEISV are not accepted. Placeholder values reported by
    many devices at once (the all-zero IDFA of users who refused tracking, emulator IMEIs) are
    refused rather than stored.
    """
    t = IdentifierType.device
    s = _prepare(t, raw).lower().removeprefix("urn:uuid:")
    s = _DEVICE_SEPARATORS.sub("", s)
    if not s:
        raise IdentifierError(t, "device.empty")
    if _IMEI.fullmatch(s):
        try:
            _stdnum_imei.validate(s)
        except _StdnumValidationError:
            raise IdentifierError(t, "device.imei_check_digit") from None
        value = s
    elif _HEX16.fullmatch(s):
        value = s
    elif _HEX32.fullmatch(s):
        value = f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"
    elif _DIGITS.fullmatch(s):
        raise IdentifierError(t, "device.imei_length", f"got {len(s)}")
    else:
        raise IdentifierError(t, "device.format")
    if value in _DEVICE_PLACEHOLDERS:
        raise IdentifierError(t, "device.placeholder")
    return value


# --- waybill prefix 运单号前缀 -----------------------------------------------------------------------

_ALNUM: Final = re.compile(r"[A-Za-z0-9]+")


def _normalise_waybill_prefix(raw: object) -> str:
    """运单号前缀: upper-case letters and digits, separators stripped (e.g. ``SF``, ``JT``, ``YT``)."""
    t = IdentifierType.waybill_prefix
    s = _compact(t, raw)
    if not _ALNUM.fullmatch(s):
        raise IdentifierError(t, "waybill_prefix.charset")
    if len(s) > 20:
        raise IdentifierError(t, "waybill_prefix.length", f"got {len(s)}")
    return s.upper()


# --- masks 脱敏显示 ------------------------------------------------------------------------------------


def _mask_middle(s: str) -> str:
    # A fixed run of stars: a count matching the hidden length would leak the length. Short values
    # show less: a first and last character of a 5-character staff number leave ~1,000 candidates.
    if len(s) < 4:
        return "***"
    if len(s) < 8:
        return s[0] + "***"
    return s[0] + "***" + s[-1]


def _mask_namespaced(value: str) -> str:
    ns, _, rest = value.partition(":")
    return f"{ns}:{_mask_middle(rest)}"


def _unmasked(value: str) -> str:
    return value


_MASKERS: Final[Mapping[IdentifierType, Callable[[str], str]]] = {
    # Organisation codes, domains, apps and waybill prefixes are public, not personal data.
    IdentifierType.uscc: _unmasked,
    # Province (2 digits) and check character: see mask() for why nothing else is shown.
    IdentifierType.resident_id: lambda v: v[:2] + "*" * 15 + v[-1],
    IdentifierType.phone: lambda v: f"+86 {v[3:6]}******{v[-2:]}",
    IdentifierType.email: lambda v: "***@" + v.rpartition("@")[2],
    IdentifierType.domain: _unmasked,
    IdentifierType.app: _unmasked,
    IdentifierType.platform_account: _mask_namespaced,
    IdentifierType.social_account: _mask_namespaced,
    IdentifierType.device: lambda v: v[:4] + "****" + v[-4:],
    IdentifierType.courier_staff: _mask_namespaced,  # the company stays visible, the person not
    IdentifierType.waybill_prefix: _unmasked,
}

_NORMALISERS: Final[Mapping[IdentifierType, Callable[[object], str]]] = {
    IdentifierType.uscc: _normalise_uscc,
    IdentifierType.resident_id: _normalise_resident_id,
    IdentifierType.phone: _normalise_phone,
    IdentifierType.email: _normalise_email,
    IdentifierType.domain: _normalise_domain,
    IdentifierType.app: _normalise_app,
    IdentifierType.platform_account: _normalise_platform_account,
    IdentifierType.social_account: _normalise_social_account,
    IdentifierType.device: _normalise_device,
    IdentifierType.courier_staff: _normalise_courier_staff,
    IdentifierType.waybill_prefix: _normalise_waybill_prefix,
}


# --- public API -----------------------------------------------------------------------------------


def normalise(type: IdentifierType | str, raw: object) -> str:
    """Return the canonical form of ``raw`` as an identifier of ``type`` (规范化 + 校验).

    Raises :class:`IdentifierError` naming the failed rule. Idempotent: a canonical value
    normalises to itself.
    """
    t = _coerce_type(type)
    return _NORMALISERS[t](raw)


def validate(type: IdentifierType | str, raw: object) -> Identifier:
    """Normalise and validate ``raw``; return an :class:`Identifier` holding the canonical value."""
    t = _coerce_type(type)
    return Identifier(t, _NORMALISERS[t](raw))


def is_valid(type: IdentifierType | str, raw: object) -> bool:
    """Whether ``raw`` passes every rule of ``type``."""
    try:
        normalise(type, raw)
    except IdentifierError:
        return False
    return True


def mask(type: IdentifierType | str, value: str) -> str:
    """Display mask (脱敏) of an identifier, e.g. ``11***************3``, ``+86 138******78``.

    ``value`` is normalised first, so a raw value is masked correctly too; an invalid one raises
    :class:`IdentifierError` rather than being shown half-masked.

    A mask is shown to enterprises, reviewers and the public, so a masked value together with the
    check digit must not narrow a person down (candidate counts, each a floor for a typical case):

    * **resident ID** ``11***************3`` — the province (2 digits) and the check character. Hidden:
      the county-level code (4 digits; about 100 counties per province, more with retired codes), the
      birth date (8 digits; about 36,500 dates over a hundred years) and the sequence number (3
      digits, 1,000); the check character (ISO 7064 MOD 11-2) keeps one in 11. Candidates:
      100 × 36,500 × 1,000 / 11 ≈ 3.3 × 10^8. Even an attacker who knows the county and the birth
      year is left with 365 × 1,000 / 11 ≈ 33,000. (The former ``110101********1233`` showed the
      county and the sequence number: about 2,700 birth dates were left, one request's worth.)
    * **phone** ``+86 138******78`` — the carrier prefix (3 digits) and the last 2; mobile numbers have
      no check digit, so 6 hidden digits leave 10^6 candidates (the former ``138****5678``: 10^4).
    * **e-mail** ``***@example.com`` — the whole local part is hidden (not even its first character
      or length); the domain is the provider's or the organisation's public name. At a mass provider
      (qq.com, 163.com) that is more than 10^8 mailboxes.
    * **device** ``3520****1481`` — IMEI: 7 hidden digits, the Luhn check digit keeps one in 10:
      10^6 candidates per shown prefix; Android ID: 8 hidden hex digits, 4.3 × 10^9; UUID-form ids
      (IDFA, OAID): 24 hidden hex digits.
    * **platform account, social account, courier staff** — the enterprise, platform or company
      stays visible (it is an organisation); of the account id or staff number only the first and
      last characters are shown when it has 8 or more (6 or more hidden: at least 10^6 for digits
      alone), the first when it has 4 to 7, nothing when shorter. A fixed ``***`` hides the length.
    * USCC, domain, app and waybill prefix are organisations' public names and are not masked.

    Names of natural persons are masked by :func:`mask_person_name`.
    """
    t = _coerce_type(type)
    return _MASKERS[t](_NORMALISERS[t](value))


def mask_person_name(name: str) -> str:
    """Display mask of an individual's name (姓名脱敏): ``张*`` , ``张*三``, ``欧**娜``.

    Two characters keep the first; longer names keep the first and last and star each one between;
    a single character becomes ``*``.
    """
    s = unicodedata.normalize("NFC", name).strip()
    if not s:
        raise ValueError("cannot mask an empty name")
    if len(s) == 1:
        return "*"
    if len(s) == 2:
        return s[0] + "*"
    return s[0] + "*" * (len(s) - 2) + s[-1]


@dataclass(frozen=True, slots=True, repr=False)
class Identifier:
    """A validated identifier (已校验标识符): its type and canonical value.

    Constructing one directly checks that ``value`` is already canonical. ``repr`` shows the masked
    value so that identifiers printed into logs do not leak personal data; use ``.value`` or
    ``.key`` deliberately when the plain value is needed.
    """

    type: IdentifierType
    value: str

    def __post_init__(self) -> None:
        t = _coerce_type(self.type)
        object.__setattr__(self, "type", t)
        if _NORMALISERS[t](self.value) != self.value:
            raise ValueError(f"{t.value}: value is not in canonical form; use validate()")

    @property
    def masked(self) -> str:
        """The display mask, see :func:`mask`."""
        return _MASKERS[self.type](self.value)

    @property
    def key(self) -> str:
        """``"<type>:<canonical value>"``, the input of the sharing tag (OPRF) and of lookups."""
        return f"{self.type.value}:{self.value}"

    @property
    def strong(self) -> bool:
        """Whether the identifier alone identifies a subject (see :data:`STRONG_TYPES`)."""
        return self.type in STRONG_TYPES

    def __repr__(self) -> str:
        return f"Identifier(type={self.type.value!r}, masked={self.masked!r})"
