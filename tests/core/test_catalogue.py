"""The catalogues: one loader for every YAML file, errors as `file:line: key: message`, cross-checks at load."""

import re
import shutil
from pathlib import Path

import pytest

from fanchaoxin.blacklist.lifecycle import Status
from fanchaoxin.blacklist.schemas import Basis as EntryBasis
from fanchaoxin.console import labels
from fanchaoxin.core.catalogue import (
    CATALOGUE_DIR,
    VOCABULARIES,
    Basis,
    CatalogueError,
    Catalogues,
    catalogues,
    load_list,
    notice_bases,
    public_bases,
    punishing_bases,
    read_yaml,
)
from fanchaoxin.sanctions.policy import Measure, PolicyError, Scene, measure_catalogue, parse_policy
from fanchaoxin.stats import service as stats


@pytest.fixture
def cat_dir(tmp_path: Path) -> Path:
    """A copy of the shipped catalogues, for a test to break."""
    return Path(shutil.copytree(CATALOGUE_DIR, tmp_path / "catalogues"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line containing `needle`."""
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path.name}")


def load_error(directory: Path) -> str:
    with pytest.raises(CatalogueError) as exc:
        Catalogues(directory)
    return str(exc.value)


# --- the shipped catalogues -----------------------------------------------------------------------------


def test_the_shipped_catalogues_load():
    cat = Catalogues()
    assert list(cat.bases) == [b.value for b in Basis]
    assert cat.behaviours and cat.severities and cat.subject_kinds
    assert list(cat.entry_statuses) == [s.value for s in Status]
    assert len(measure_catalogue().measures) == 13


def test_the_bases_catalogue_says_what_each_basis_means():
    assert punishing_bases() == {"administrative_penalty", "judicial_decision"}
    assert notice_bases() == {"enterprise_finding"}
    # Two lists: decisions with legal force are public; enterprise findings are shared (lists.yaml).
    assert public_bases() == {"administrative_penalty", "judicial_decision"}
    b = catalogues().bases["enterprise_finding"]
    assert (b.zh, b.en) == ("企业监测发现", "Enterprise finding")


def test_the_entry_basis_is_the_catalogue_basis():
    # The registry's schemas use the catalogue's enum itself: one list of bases.
    assert EntryBasis is Basis


def test_every_status_has_names():
    cat = catalogues()
    cat.require("entry_status", Status)
    # Case statuses are plain strings of the appeals models (see their `status` column comments).
    cat.require("case_status", ("open", "forwarded", "answered", "decided"))  # objections
    cat.require("case_status", ("open", "decided"))  # repair applications
    cat.require("case_status", ("received", "routed", "handled", "dismissed"))  # reports


def test_a_missing_name_fails_the_cross_check():
    with pytest.raises(CatalogueError, match=r"^statuses\.yaml:1: entry_status: no entry for 'archived'"):
        catalogues().require("entry_status", [*Status, "archived"])


# --- errors name file, line and key ---------------------------------------------------------------------


def test_a_duplicate_key_names_both_lines(cat_dir):
    path = cat_dir / "severities.yaml"
    edit(path, "  max_months: 12\n", "  max_months: 12\n  max_months: 24\n")
    line = line_of(path, "max_months: 24")
    assert load_error(cat_dir) == (
        f"severities.yaml:{line}: [1].max_months: duplicate key 'max_months' (first at line {line - 1})"
    )


def test_a_bad_value_names_the_line_of_its_key(cat_dir):
    path = cat_dir / "severities.yaml"
    edit(path, "  max_months: 36\n", "  max_months: 6\n")
    line = line_of(path, "max_months: 6")
    assert load_error(cat_dir) == f"severities.yaml:{line}: serious.max_months: is below min_months (12)"


def test_a_value_of_the_wrong_type(cat_dir):
    path = cat_dir / "subject_kinds.yaml"
    edit(path, "  personal: true\n", "  personal: perhaps\n")
    line = line_of(path, "personal: perhaps")
    msg = load_error(cat_dir)
    assert msg.startswith(f"subject_kinds.yaml:{line}: individual.personal: ")
    assert "boolean" in msg


def test_an_unknown_key(cat_dir):
    path = cat_dir / "behaviours.yaml"
    edit(path, "  zh: 虚假评价\n", "  zh: 虚假评价\n  colour: red\n")
    line = line_of(path, "colour: red")
    assert load_error(cat_dir).startswith(f"behaviours.yaml:{line}: fake_review.colour: Extra inputs")


def test_a_duplicate_code(cat_dir):
    path = cat_dir / "behaviours.yaml"
    edit(path, "- code: fake_review\n", "- code: order_brushing\n")
    first, second = line_of(path, "code: order_brushing"), line_of(path, "zh: 虚假评价") - 1
    assert load_error(cat_dir) == (
        f"behaviours.yaml:{second}: order_brushing: duplicate code 'order_brushing' (first at line {first})"
    )


def test_a_yaml_syntax_error(cat_dir):
    (cat_dir / "behaviours.yaml").write_text("- code: order_brushing\n  zh: [刷单\n", encoding="utf-8")
    assert re.match(r"^behaviours\.yaml:3: not valid YAML: ", load_error(cat_dir))


def test_a_duplicate_status_in_a_section(cat_dir):
    path = cat_dir / "statuses.yaml"
    edit(path, "{code: routed,", "{code: received,")
    line = line_of(path, "zh: 已转办")
    assert load_error(cat_dir).startswith(f"statuses.yaml:{line}: received: duplicate code 'received'")


# --- the bases cross-check --------------------------------------------------------------------------------


def test_a_basis_missing_from_the_catalogue_fails_at_load(cat_dir):
    path = cat_dir / "bases.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("- code: judicial_decision")], encoding="utf-8")
    assert load_error(cat_dir) == (
        "bases.yaml:1: (top): no entry for basis 'judicial_decision' (every Basis needs one)"
    )


def test_a_basis_the_code_does_not_know_fails_at_load(cat_dir):
    path = cat_dir / "bases.yaml"
    edit(path, "- code: judicial_decision", "- code: arbitration_award")
    line = line_of(path, "code: arbitration_award")
    assert load_error(cat_dir).startswith(
        f"bases.yaml:{line}: arbitration_award.code: unknown basis 'arbitration_award'"
    )


def test_a_basis_must_say_whether_it_punishes(cat_dir):
    path = cat_dir / "bases.yaml"
    edit(path, "  punishing: true\n", "")
    line = line_of(path, "code: administrative_penalty")
    assert load_error(cat_dir).startswith(
        f"bases.yaml:{line}: administrative_penalty.punishing: Field required"
    )


# --- policies and measure catalogues use the same loader -------------------------------------------------


def test_policy_errors_are_catalogue_errors():
    assert PolicyError is CatalogueError
    with pytest.raises(CatalogueError, match=r"^p\.yaml:3: rules\[0\]\.measures\[0\]\.code: unknown measure"):
        parse_policy("version: x\nrules:\n  - measures: [nope]\n", "p.yaml")


def test_a_measure_with_an_unknown_scene_names_its_line(cat_dir):
    path = cat_dir / "measures.yaml"
    edit(
        path,
        "  scenes: {promotion_signup: deny, shop_event: deny}\n",
        "  scenes: {promotion_signup: deny, shop_event: deny, karaoke: deny}\n",
    )
    line = line_of(path, "karaoke")
    scenes = load_list(cat_dir / "scenes.yaml", Scene).items
    with pytest.raises(CatalogueError) as exc:
        load_list(path, Measure, context={"scenes": scenes})
    assert (
        str(exc.value)
        == f"measures.yaml:{line}: restrict_promotions.scenes.karaoke: unknown scene 'karaoke' (scenes.yaml)"
    )


def test_read_yaml_remembers_lines():
    data, lines = read_yaml("a:\n  - x\n  - {b: 1}\n", "t.yaml")
    assert data == {"a": ["x", {"b": 1}]}
    assert lines[("a",)] == 1 and lines[("a", 1)] == 3 and lines[("a", 1, "b")] == 3
    with pytest.raises(CatalogueError, match=r"^t\.yaml:1: the file is empty"):
        read_yaml("# nothing\n", "t.yaml")


# --- labels come from the catalogues ---------------------------------------------------------------------


@pytest.mark.parametrize("vocabulary", list(VOCABULARIES))
def test_console_and_statistics_name_codes_from_the_catalogue(vocabulary):
    for code, item in catalogues().vocabulary(vocabulary).items():
        assert labels.label(vocabulary, code, "zh_CN") == item.zh
        assert labels.label(vocabulary, code, "en") == item.en
    assert labels.label(vocabulary, "no_such_code", "en") == "no_such_code"
    assert labels.label(vocabulary, None, "en") == "—"


def test_statistics_dimensions_are_labelled_by_the_catalogue():
    cat = catalogues()
    assert stats._label("status", "published") == (cat.entry_statuses["published"].zh, "Published")
    assert stats._label("basis", "judicial_decision") == ("司法裁判", "Judicial decision")
    assert stats._label("severity", "serious") == (cat.severities["serious"].zh, "Serious")
    assert stats._label("month", "2026-10") == ("2026-10", "2026-10")


def test_the_console_vocabularies_are_translated():
    assert labels.label("role", "auditor", "en") == "Auditor"
    assert labels.label("role", "auditor", "zh_CN") != "Auditor"
    assert not {"entry_status", "basis", "case_status"} & set(labels.ALL)
