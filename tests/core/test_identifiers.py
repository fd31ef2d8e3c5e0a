"""Identifier rules (fanchaoxin.core.identifiers): properties and tables.

The generators below compute check characters with their own code, written from the standards
(GB 32100, GB 11714, GB 11643) rather than calling the module, so a wrong weight in the module
cannot hide behind the same wrong weight in the test.
"""

from __future__ import annotations

import pickle
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from fanchaoxin.core.identifiers import (
    RULES,
    STRONG_TYPES,
    Identifier,
    IdentifierError,
    IdentifierType,
    is_valid,
    mask,
    mask_person_name,
    normalise,
    org_code_check_char,
    resident_id_check_digit,
    uscc_check_char,
    validate,
)

T = IdentifierType

# --- independent reference implementations --------------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_LETTERS = "ABCDEFGHJKLMNPQRTUWXY"
DIGITS = "0123456789"
PROVINCES = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83",
]  # fmt: skip


def ref_org_check(first8: str) -> str:
    # GB 11714: digits keep their value, A-Z are 10-35 (base 36), weights 3 7 9 10 5 8 4 2.
    total = sum(int(c, 36) * w for c, w in zip(first8, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def ref_uscc_check(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def ref_rid_check(first17: str) -> str:
    # ISO 7064 MOD 11-2: weight of position i (from the left, 18 positions) is 2^(17-i) mod 11.
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    return "10X98765432"[total % 11]


def to_fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def substitutions(value: str, alphabet: str):
    for i, original in enumerate(value):
        for c in alphabet:
            if c != original:
                yield i, value[:i] + c + value[i + 1 :]


# --- strategies -----------------------------------------------------------------------------------


def chars(alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=n, max_size=n)


@st.composite
def usccs(draw: st.DrawFn, head: st.SearchStrategy[str] | None = None) -> str:
    first2 = draw(head if head is not None else chars(USCC_ALPHABET, 2))
    region = draw(chars(DIGITS, 6))
    org8 = draw(chars(USCC_ALPHABET, 8))
    body = first2 + region + org8 + ref_org_check(org8)
    return body + ref_uscc_check(body)


# Today in China may be a day ahead of the machine's date; two days of margin keep tests stable.
LATEST_BIRTH = date.today() - timedelta(days=2)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(PROVINCES)) + draw(chars(DIGITS, 4))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=LATEST_BIRTH))
    body = region + born.strftime("%Y%m%d") + draw(chars(DIGITS, 3))
    return body + ref_rid_check(body)


@st.composite
def with_separators(draw: st.DrawFn, value: str) -> str:
    out = []
    for c in value:
        out.append(c)
        out.append(draw(st.sampled_from(["", "", "", " ", "-", "\u3000", "－", "\t"])))
    return "".join(out)


mobiles = st.builds(
    lambda second, rest: "1" + second + rest, st.sampled_from("3456789"), chars(DIGITS, 9)
)


# --- the reference implementations match the module and python-stdnum -----------------------------


def test_reference_weights_match_the_design() -> None:
    uscc_weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    rid_weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    assert [pow(3, i, 31) for i in range(17)] == uscc_weights
    assert [pow(2, 17 - i, 11) for i in range(17)] == rid_weights


@given(chars(USCC_ALPHABET, 17))
def test_uscc_check_char_matches_stdnum(first17: str) -> None:
    assert uscc_check_char(first17) == ref_uscc_check(first17) == stdnum_uscc.calc_check_digit(first17)


@given(chars(DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 8))
def test_org_code_check_char(first8: str) -> None:
    assert org_code_check_char(first8) == ref_org_check(first8)


@given(chars(DIGITS, 17))
def test_resident_id_check_digit_matches_stdnum(first17: str) -> None:
    expected = stdnum_ric.calc_check_digit(first17 + "0")  # stdnum drops the last character
    assert resident_id_check_digit(first17) == ref_rid_check(first17) == expected


# --- USCC properties --------------------------------------------------------------------------------


@given(usccs())
def test_generated_uscc_is_valid(code: str) -> None:
    assert normalise(T.uscc, code) == code
    if code[:2].isdigit():
        assert stdnum_uscc.is_valid(code)


@given(usccs(head=st.tuples(st.sampled_from(USCC_LETTERS), st.sampled_from(USCC_ALPHABET)).map("".join)))
def test_uscc_with_letter_registration_authority_is_valid(code: str) -> None:
    assert normalise(T.uscc, code) == code
    assert not stdnum_uscc.is_valid(code)  # the stdnum bug this module works around


@settings(max_examples=60)
@given(usccs())
def test_every_single_substitution_of_a_uscc_fails(code: str) -> None:
    for i, changed in substitutions(code, USCC_ALPHABET):
        with pytest.raises(IdentifierError) as info:
            normalise(T.uscc, changed)
        assert info.value.type is T.uscc
        assert info.value.rule in {"uscc.region_code", "uscc.org_code_check", "uscc.check_char"}, i


@given(usccs(), st.booleans())
def test_uscc_fullwidth_lowercase_and_separators_normalise(code: str, lower: bool) -> None:
    raw = code.lower() if lower else code
    assert normalise(T.uscc, to_fullwidth(raw)) == code
    assert normalise(T.uscc, f"  {raw[:2]} {raw[2:8]}-{raw[8:17]}.{raw[17]} ") == code


@given(usccs().flatmap(with_separators))
def test_uscc_inserted_separators(raw: str) -> None:
    assert is_valid(T.uscc, raw)


# --- resident ID properties -------------------------------------------------------------------------


@given(resident_ids())
def test_generated_resident_id_is_valid(rid: str) -> None:
    assert normalise(T.resident_id, rid) == rid
    assert normalise(T.resident_id, rid.lower()) == rid  # lower-case x


@settings(max_examples=100)
@given(resident_ids())
def test_every_single_substitution_of_a_resident_id_fails(rid: str) -> None:
    # MOD 11-2 catches every single substitution: each weight is a unit mod the prime 11 and a
    # digit changes by 1-9, so the weighted sum always moves; a changed check digit cannot match.
    for i, changed in substitutions(rid, DIGITS + "X"):
        with pytest.raises(IdentifierError) as info:
            normalise(T.resident_id, changed)
        assert info.value.type is T.resident_id, i


@given(resident_ids().flatmap(lambda r: st.tuples(st.just(r), with_separators(to_fullwidth(r.lower())))))
def test_resident_id_fullwidth_and_separators(pair: tuple[str, str]) -> None:
    rid, raw = pair
    assert normalise(T.resident_id, raw) == rid


@st.composite
def legacy_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(PROVINCES)) + draw(chars(DIGITS, 4))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)))
    return region + born.strftime("%y%m%d") + draw(chars(DIGITS, 3))


@given(legacy_ids())
def test_legacy_15_digit_numbers_are_upgraded(old: str) -> None:
    new = normalise(T.resident_id, old)
    assert new[:17] == old[:6] + "19" + old[6:]
    assert new[17] == ref_rid_check(new[:17])
    assert stdnum_ric.calc_check_digit(new) == new[17]
    assert normalise(T.resident_id, new) == new


def test_legacy_upgrade_example() -> None:
    assert normalise(T.resident_id, "130503670401001") == "130503196704010016"
    assert normalise(T.resident_id, "130503 670401 001") == "130503196704010016"


# --- phone properties -------------------------------------------------------------------------------


@given(
    mobiles,
    st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86", "(+86) ", "+86-"]),
    st.booleans(),
)
def test_mobile_numbers_normalise_to_e164(number: str, prefix: str, fullwidth: bool) -> None:
    raw = f"{prefix}{number[:3]} {number[3:7]}-{number[7:]}"
    if fullwidth:
        raw = to_fullwidth(raw)
    assert normalise(T.phone, raw) == "+86" + number
    assert mask(T.phone, raw) == f"+86 {number[:3]}******{number[9:]}"


# --- tables -----------------------------------------------------------------------------------------

VALID = [
    # uscc
    (T.uscc, "91110000600037341L", "91110000600037341L"),
    (T.uscc, "91110000600037341l", "91110000600037341L"),
    (T.uscc, "９１１１００００６０００３７３４１Ｌ", "91110000600037341L"),
    (T.uscc, "9111 0000 6000 3734 1L", "91110000600037341L"),
    (T.uscc, "N2110108MA01AB3CXG", "N2110108MA01AB3CXG"),  # 农业 registration authority
    (T.uscc, "Y1310115MA1FL8K22U", "Y1310115MA1FL8K22U"),
    (T.uscc, "9N440300MA5DXY123B", "9N440300MA5DXY123B"),  # letter in position 2
    (T.uscc, "93330782MA28D4W70N", "93330782MA28D4W70N"),
    # resident_id
    (T.resident_id, "11010519491231002X", "11010519491231002X"),
    (T.resident_id, "11010519491231002x", "11010519491231002X"),
    (T.resident_id, "110101 19900307 1233", "110101199003071233"),
    (T.resident_id, "65010220000229001X", "65010220000229001X"),  # 29 February of a leap year
    (T.resident_id, "830000199912310024", "830000199912310024"),  # 台湾居民居住证
    (T.resident_id, "130503670401001", "130503196704010016"),  # legacy 15 digits
    # phone
    (T.phone, "13812345678", "+8613812345678"),
    (T.phone, "+86 138 1234 5678", "+8613812345678"),
    (T.phone, "+86-138-1234-5678", "+8613812345678"),
    (T.phone, "0086 13812345678", "+8613812345678"),
    (T.phone, "8613812345678", "+8613812345678"),
    (T.phone, "(+86)19912345678", "+8619912345678"),
    (T.phone, "１３８１２３４５６７８", "+8613812345678"),
    # email
    (T.email, "Zhang.San@Example.COM", "zhang.san@example.com"),
    (T.email, " user+tag@QQ.com ", "user+tag@qq.com"),
    (T.email, "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｎ", "zhang@example.cn"),
    (T.email, "a@例子。中国", "a@xn--fsqu00a.xn--fiqs8s"),
    # domain
    (T.domain, "Example.COM", "example.com"),
    (T.domain, "example.com.", "example.com"),
    (T.domain, "https://www.example.com:8443/shop?id=1#top", "www.example.com"),
    (T.domain, "http://例子.中国/", "xn--fsqu00a.xn--fiqs8s"),
    (T.domain, "xn--fsqu00a.xn--fiqs8s", "xn--fsqu00a.xn--fiqs8s"),
    (T.domain, "shop-1.example.com.cn", "shop-1.example.com.cn"),
    # app
    (T.app, "com.example.shop", "com.example.shop"),
    (T.app, "Com.Example.Shop", "com.example.shop"),
    (T.app, "com.ss.android.ugc.aweme", "com.ss.android.ugc.aweme"),
    (T.app, "com.360buy.jdmobile", "com.360buy.jdmobile"),
    (T.app, "com.example.my-app", "com.example.my-app"),
    # platform_account
    (T.platform_account, "taobao:Shop_123", "taobao:Shop_123"),
    (T.platform_account, " TaoBao : Shop_123 ", "taobao:Shop_123"),
    (T.platform_account, "jd:张三的小店", "jd:张三的小店"),
    (T.platform_account, "meituan:a:b", "meituan:a:b"),
    (T.platform_account, "ｔａｏｂａｏ：ＡＢＣ", "taobao:ABC"),
    # social_account
    (T.social_account, "weibo:@张三", "weibo:张三"),
    (T.social_account, "WeChat:wxid_Abc123", "wechat:wxid_Abc123"),
    # device
    (T.device, "352099001761481", "352099001761481"),
    (T.device, "35-209900-176148-1", "352099001761481"),
    (T.device, "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    (T.device, "{6d92078a82464ba4ae5b76104861e7dc}", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    (T.device, "urn:uuid:6d92078a-8246-4ba4-ae5b-76104861e7dc", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    (T.device, "A1B2C3D4E5F60718", "a1b2c3d4e5f60718"),  # Android ID
    # courier_staff
    (T.courier_staff, "91110000600037341L:SF001", "91110000600037341L:SF001"),
    (T.courier_staff, "91110000600037341l : sf-001", "91110000600037341L:SF001"),
    # waybill_prefix
    (T.waybill_prefix, "SF", "SF"),
    (T.waybill_prefix, " jt ", "JT"),
    (T.waybill_prefix, "ＹＴ", "YT"),
]


@pytest.mark.parametrize(("t", "raw", "canonical"), VALID)
def test_valid(t: IdentifierType, raw: str, canonical: str) -> None:
    assert normalise(t, raw) == canonical
    assert normalise(t.value, raw) == canonical  # the type may come as its string code
    assert normalise(t, canonical) == canonical  # idempotent
    ident = validate(t, raw)
    assert ident == Identifier(t, canonical)
    assert ident.key == f"{t.value}:{canonical}"
    assert is_valid(t, raw)


FUTURE = (date.today() + timedelta(days=2)).strftime("%Y%m%d")
FUTURE_RID = "110105" + FUTURE + "001" + ref_rid_check("110105" + FUTURE + "001")

INVALID = [
    # uscc
    (T.uscc, "91110000600037341", "uscc.length"),
    (T.uscc, "91110000600037341L1", "uscc.length"),
    (T.uscc, "91110000600037341I", "uscc.charset"),
    (T.uscc, "9111000060003734IL", "uscc.charset"),
    (T.uscc, "O1110000600037341L", "uscc.charset"),
    (T.uscc, "9111000０6000３7341Ł", "uscc.charset"),
    (T.uscc, "911A0000600037341L", "uscc.region_code"),
    (T.uscc, "91110000600037351L", "uscc.org_code_check"),
    (T.uscc, "91110000600037341M", "uscc.check_char"),
    (T.uscc, "91110000600037314L", "uscc.org_code_check"),  # swapped neighbours
    (T.uscc, "", "uscc.empty"),
    (T.uscc, " - ", "uscc.empty"),
    (T.uscc, 91110000, "uscc.not_text"),
    # resident_id
    (T.resident_id, "1101051949123100", "resident_id.length"),
    (T.resident_id, "11010519491231002XX", "resident_id.length"),
    (T.resident_id, "1101051949123100X2", "resident_id.charset"),
    (T.resident_id, "11010567040100X", "resident_id.charset"),
    (T.resident_id, "99010519491231002X", "resident_id.region_code"),
    (T.resident_id, "110105194902300024", "resident_id.birth_date"),  # 30 February
    (T.resident_id, "440524188001010014", "resident_id.birth_date"),  # before 1900
    (T.resident_id, FUTURE_RID, "resident_id.birth_date"),  # born the day after tomorrow
    (T.resident_id, "110105194912310021", "resident_id.check_digit"),
    (T.resident_id, "11010519491231002Y", "resident_id.charset"),
    (T.resident_id, 110105194912310021, "resident_id.not_text"),
    # phone
    (T.phone, "010-12345678", "phone.not_mainland_mobile"),
    (T.phone, "021 6123 4567", "phone.not_mainland_mobile"),
    (T.phone, "+852 9123 4567", "phone.not_mainland_mobile"),
    (T.phone, "+1 415 555 0100", "phone.not_mainland_mobile"),
    (T.phone, "12812345678", "phone.not_mainland_mobile"),
    (T.phone, "+86 12812345678", "phone.not_mainland_mobile"),
    (T.phone, "1381234567", "phone.length"),
    (T.phone, "+86 138123456789", "phone.length"),
    (T.phone, "+86", "phone.length"),
    (T.phone, "138-1234-567a", "phone.charset"),
    (T.phone, "", "phone.empty"),
    # email
    (T.email, "zhang", "email.format"),
    (T.email, "zhang@", "email.format"),
    (T.email, "@example.com", "email.format"),
    (T.email, "a@b@example.com", "email.format"),
    (T.email, "zhang san@example.com", "email.format"),
    (T.email, ".zhang@example.com", "email.local_part"),
    (T.email, "zhang..san@example.com", "email.local_part"),
    (T.email, "张三@example.com", "email.local_part"),
    (T.email, "a" * 65 + "@example.com", "email.local_part"),
    (T.email, "zhang@localhost", "email.domain"),
    (T.email, "zhang@exa_mple.com", "email.domain"),
    (T.email, "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".cn", "email.length"),
    # domain
    (T.domain, "localhost", "domain.no_dot"),
    (T.domain, "exa mple.com", "domain.format"),
    (T.domain, "user@example.com", "domain.format"),
    (T.domain, "example.com:http", "domain.format"),
    (T.domain, "example..com", "domain.label"),
    (T.domain, "-example.com", "domain.label"),
    (T.domain, "exa_mple.com", "domain.label"),
    (T.domain, "a" * 64 + ".com", "domain.label"),
    (T.domain, "xn--a.com", "domain.idna"),
    (T.domain, "192.168.1.1", "domain.tld"),
    (T.domain, ".".join(["a" * 63] * 4) + ".cn", "domain.length"),
    (T.domain, "https://", "domain.empty"),
    # app
    (T.app, "shop", "app.format"),
    (T.app, "com.example shop", "app.format"),
    (T.app, "com..shop", "app.segment"),
    (T.app, "com.example._shop", "app.segment"),
    (T.app, "com.例子.shop", "app.segment"),
    (T.app, "com." + "a" * 252, "app.length"),
    # platform_account
    (T.platform_account, "Shop_123", "platform_account.format"),
    (T.platform_account, ":Shop_123", "platform_account.namespace"),
    (T.platform_account, "tao bao:Shop_123", "platform_account.namespace"),
    (T.platform_account, "taobao:", "platform_account.account"),
    (T.platform_account, "taobao:Shop 123", "platform_account.account"),
    (T.platform_account, "taobao:abc\u202edef", "platform_account.account"),  # bidi override
    (T.platform_account, "taobao:" + "a" * 257, "platform_account.account"),
    # social_account
    (T.social_account, "张三", "social_account.format"),
    (T.social_account, "微博:张三", "social_account.namespace"),
    (T.social_account, "weibo:@", "social_account.handle"),
    # device
    (T.device, "352099001761482", "device.imei_check_digit"),
    (T.device, "35209900176148", "device.imei_length"),
    (T.device, "35209900176148100", "device.imei_length"),
    (T.device, "not-a-device", "device.format"),
    (T.device, "00:1a:2b:3c:4d:5e", "device.format"),  # MAC addresses are not accepted
    (T.device, "000000000000000", "device.placeholder"),
    (T.device, "00000000-0000-0000-0000-000000000000", "device.placeholder"),
    (T.device, "9774d56d682e549c", "device.placeholder"),
    # courier_staff
    (T.courier_staff, "91110000600037341L", "courier_staff.format"),
    (T.courier_staff, "91110000600037341M:SF001", "courier_staff.company_uscc"),
    (T.courier_staff, "91110000600037341L:", "courier_staff.staff_no"),
    (T.courier_staff, "91110000600037341L:工号1", "courier_staff.staff_no"),
    (T.courier_staff, "91110000600037341L:" + "1" * 33, "courier_staff.staff_no"),
    # waybill_prefix
    (T.waybill_prefix, "S#F", "waybill_prefix.charset"),
    (T.waybill_prefix, "顺丰", "waybill_prefix.charset"),
    (T.waybill_prefix, "A" * 21, "waybill_prefix.length"),
    (T.waybill_prefix, "--", "waybill_prefix.empty"),
]


@pytest.mark.parametrize(("t", "raw", "rule"), INVALID)
def test_invalid(t: IdentifierType, raw: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as info:
        normalise(t, raw)
    err = info.value
    assert err.rule == rule
    assert err.type is t
    assert rule in RULES
    assert rule in str(err)
    assert err.message and err.message_zh
    assert not is_valid(t, raw)


def test_every_rule_is_exercised_by_the_table() -> None:
    # A new rule without a failing example would be untested; generic ones need only spot checks.
    generic = {r for r in RULES if r.endswith((".empty", ".not_text"))}
    specific = set(RULES) - generic - {"type.unknown"}
    assert specific <= {rule for _, _, rule in INVALID}


def test_errors_do_not_repeat_the_value() -> None:
    raw = "110105194912310021"
    with pytest.raises(IdentifierError) as info:
        normalise(T.resident_id, raw)
    assert raw not in str(info.value)
    assert raw not in info.value.message
    assert raw not in repr(info.value.as_dict())


def test_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ValueError):
        normalise(T.phone, "010-12345678")
    err = IdentifierError(T.uscc, "uscc.length", "got 3")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.type, copy.rule, copy.message, copy.message_zh, str(copy)) == (
        err.type,
        err.rule,
        err.message,
        err.message_zh,
        str(err),
    )
    assert err.as_dict() == {
        "type": "uscc",
        "rule": "uscc.length",
        "message": err.message,
        "message_zh": "统一社会信用代码应为18位",
    }


def test_courier_staff_error_chains_the_uscc_error() -> None:
    with pytest.raises(IdentifierError) as info:
        normalise(T.courier_staff, "91110000600037341M:SF001")
    assert isinstance(info.value.__cause__, IdentifierError)
    assert info.value.__cause__.rule == "uscc.check_char"
    assert "uscc.check_char" in info.value.message


def test_unknown_type() -> None:
    with pytest.raises(IdentifierError) as info:
        normalise("passport", "E12345678")
    assert info.value.rule == "type.unknown"
    assert info.value.type is None


# --- masks ------------------------------------------------------------------------------------------

MASKS = [
    (T.resident_id, "110101199003071233", "11***************3"),
    (T.resident_id, "130503670401001", "13***************6"),
    (T.phone, "13812345678", "+86 138******78"),
    (T.email, "Zhang.San@Example.com", "***@example.com"),
    (T.platform_account, "taobao:Shop_123", "taobao:S***3"),
    (T.platform_account, "taobao:abcd", "taobao:a***"),
    (T.platform_account, "taobao:abcdefg", "taobao:a***"),
    (T.courier_staff, "91110000600037341L:SF001", "91110000600037341L:S***"),
    (T.platform_account, "taobao:ab", "taobao:***"),
    (T.social_account, "weibo:@张三丰", "weibo:***"),
    (T.courier_staff, "91110000600037341L:SF001234", "91110000600037341L:S***4"),
    (T.device, "352099001761481", "3520****1481"),
    (T.device, "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92****e7dc"),
    (T.uscc, "91110000600037341L", "91110000600037341L"),
    (T.domain, "Example.com", "example.com"),
    (T.app, "com.example.shop", "com.example.shop"),
    (T.waybill_prefix, "sf", "SF"),
]


@pytest.mark.parametrize(("t", "raw", "masked"), MASKS)
def test_masks(t: IdentifierType, raw: str, masked: str) -> None:
    assert mask(t, raw) == masked
    assert validate(t, raw).masked == masked


def test_resident_id_mask_hides_county_birth_date_and_sequence() -> None:
    # Another county, birth date and sequence number with the same province and check character:
    # the mask cannot tell the two people apart.
    a = "110101199003071233"
    b = next(
        f"{body}{resident_id_check_digit(body)}"
        for n in range(1000)
        if resident_id_check_digit(body := f"11010819851224{n:03d}") == a[-1]
    )
    assert mask(T.resident_id, a) == mask(T.resident_id, b) == "11***************3"


def test_phone_mask_hides_six_digits() -> None:
    masked = mask(T.phone, "13812345678")
    assert masked.count("*") == 6 and "5678" not in masked and "1234" not in masked


def test_mask_refuses_invalid_values() -> None:
    with pytest.raises(IdentifierError):
        mask(T.resident_id, "110101199003071234")


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("张三丰", "张*丰"),
        ("欧阳娜娜", "欧**娜"),
        ("阿卜杜勒·艾尼", "阿*****尼"),
        (" 李四 ", "李*"),
        ("王", "*"),
    ],
)
def test_mask_person_name(name: str, masked: str) -> None:
    assert mask_person_name(name) == masked


def test_mask_person_name_refuses_empty() -> None:
    with pytest.raises(ValueError):
        mask_person_name("  ")


# --- Identifier and STRONG_TYPES ---------------------------------------------------------------------


def test_identifier_repr_is_masked() -> None:
    ident = validate(T.phone, "13812345678")
    assert "13812345678" not in repr(ident)
    assert "13812345678" not in str(ident)
    assert "138******78" in repr(ident)
    assert ident.value == "+8613812345678"
    assert ident.strong


def test_identifier_requires_canonical_value() -> None:
    with pytest.raises(ValueError):
        Identifier(T.phone, "13812345678")
    with pytest.raises(IdentifierError):
        Identifier(T.phone, "010-12345678")
    assert Identifier("phone", "+8613812345678").type is T.phone  # type: ignore[arg-type]


def test_identifier_is_frozen_and_hashable() -> None:
    ident = validate(T.uscc, "91110000600037341L")
    with pytest.raises(AttributeError):
        ident.value = "x"  # type: ignore[misc]
    assert len({ident, validate(T.uscc, "９１１１００００６０００３７３４１Ｌ")}) == 1


def test_strong_types() -> None:
    assert set(T) - STRONG_TYPES == {T.waybill_prefix}
    assert not validate(T.waybill_prefix, "SF").strong
