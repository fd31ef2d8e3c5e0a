"""The data key ring and authenticated encryption (core.vault): round trips, refusals, key files."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from fanchaoxin.core import vault
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.vault import DataKeyError


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ring of its own in a temporary file, named explicitly as FCX_DATA_KEY_FILE."""
    path = tmp_path / "keys" / "data.json"
    get_settings.cache_clear()  # the ring is made for the run's profile, whatever a test before left
    vault.write_ring(vault.new_ring(path), exclusive=True)
    monkeypatch.setenv("FCX_DATA_KEY_FILE", str(path))
    get_settings.cache_clear()
    vault.forget()
    yield path
    get_settings.cache_clear()
    vault.forget()


def test_text_round_trip_and_every_value_sealed_anew(key_file: Path) -> None:
    sealed = vault.encrypt("11010519491231002X", "subjects.name")
    assert sealed.startswith("fcx1:d1:") and "11010519491231002X" not in sealed
    assert vault.decrypt(sealed, "subjects.name") == "11010519491231002X"
    assert vault.encrypt("11010519491231002X", "subjects.name") != sealed  # a fresh nonce each time
    assert vault.key_id_of(sealed) == "d1" and vault.key_id_of("plain") is None


def test_bytes_round_trip(key_file: Path) -> None:
    sealed = vault.encrypt_bytes(b"%PDF-1.4 110105", "evidence_blobs.data")
    assert sealed.startswith(vault.BLOB_MAGIC + b"d1\x00") and b"110105" not in sealed
    assert vault.blob_key_id(sealed) == "d1"
    assert vault.decrypt_bytes(sealed, "evidence_blobs.data") == b"%PDF-1.4 110105"


def test_a_value_moved_to_another_column_does_not_open(key_file: Path) -> None:
    sealed = vault.encrypt("a@example.cn", "objections.contact_email")
    with pytest.raises(DataKeyError, match=r"reports\.contact_email.*does not open"):
        vault.decrypt(sealed, "reports.contact_email")
    blob = vault.encrypt_bytes(b"x", "evidence_blobs.data")
    with pytest.raises(DataKeyError, match="does not open"):
        vault.decrypt_bytes(blob, "case_attachments.data")


def test_a_tampered_value_does_not_open(key_file: Path) -> None:
    sealed = vault.encrypt("13800138000", "subject_identifiers.value")
    prefix, body = sealed.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(DataKeyError, match="altered"):
        vault.decrypt(f"{prefix}:{base64.b64encode(bytes(raw)).decode()}", "subject_identifiers.value")
    blob = bytearray(vault.encrypt_bytes(b"file", "evidence_blobs.data"))
    blob[-3] ^= 0x80
    with pytest.raises(DataKeyError, match="altered"):
        vault.decrypt_bytes(bytes(blob), "evidence_blobs.data")


def test_a_value_under_a_key_the_ring_lacks_names_the_key_and_the_file(key_file: Path) -> None:
    sealed = vault.encrypt("x", "reports.reported").replace("fcx1:d1:", "fcx1:d7:", 1)
    with pytest.raises(DataKeyError, match=rf"'d7' is not in {key_file}"):
        vault.decrypt(sealed, "reports.reported")


def test_a_plain_value_in_an_encrypted_column_is_refused(key_file: Path) -> None:
    with pytest.raises(DataKeyError, match="not encrypted"):
        vault.decrypt("legal@example.com", "objections.contact_email")


def _write(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, "utf-8")
    vault.forget()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["keys"].update(d1=base64.b64encode(b"short").decode()),
            r"is (32|16) bytes, this one is 5",
        ),
        (lambda d: d.update(index_key=base64.b64encode(b"x" * 16).decode()), "index_key.*this one is 16"),
        (lambda d: d["keys"].update(d1="not base64!"), "not base64"),
        (lambda d: d.update(active="d9"), "active key 'd9' is not among the keys"),
        (lambda d: d.update(format="other"), "format must be"),
        (lambda d: d.update(keys={}), "keys must be a non-empty object"),
        (lambda d: d["keys"].update({"d:2": d["keys"]["d1"]}), "key id 'd:2'"),
    ],
)
def test_a_bad_key_file_is_refused_naming_the_file(key_file: Path, mutate, message) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(key_file.read_text())
    mutate(doc)
    _write(key_file, doc)
    with pytest.raises(DataKeyError, match=message) as caught:
        vault.ring()
    assert str(key_file) in str(caught.value)


def test_malformed_json_and_a_missing_file_name_the_file(key_file: Path) -> None:
    _write(key_file, "{not json")
    with pytest.raises(DataKeyError, match="cannot be read as JSON") as caught:
        vault.ring()
    assert str(key_file) in str(caught.value)
    key_file.unlink()
    vault.forget()
    with pytest.raises(DataKeyError, match="is missing") as caught:
        vault.ring()
    assert str(key_file) in str(caught.value)


def test_ensure_ring_never_creates_a_file_named_explicitly(key_file: Path) -> None:
    key_file.unlink()
    vault.forget()
    with pytest.raises(DataKeyError, match="FCX_DATA_KEY_FILE names it"):
        vault.ensure_ring()
    assert not key_file.exists()


def test_ensure_ring_creates_the_default_file_on_a_new_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FCX_DATA_KEY_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # the default is var/keys/data.json, relative to the working directory
    get_settings.cache_clear()
    vault.forget()
    try:
        assert not vault.key_file_explicit()
        ring, created = vault.ensure_ring()
        assert created and ring.path == (tmp_path / "var/keys/data.json").resolve()
        assert oct(ring.path.stat().st_mode & 0o777) == "0o600"
        again, created = vault.ensure_ring()
        assert not created and again.keys == ring.keys  # never replaced
    finally:
        get_settings.cache_clear()
        vault.forget()


def test_a_rewritten_key_file_reaches_the_process(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers re-read the ring when its file changes (a rotation by `fcx keys rotate-data`)."""
    first = vault.ring()
    ring = vault.read_ring(key_file)
    ring.keys["d2"] = vault.new_key()
    ring.active = "d2"
    vault.write_ring(ring, exclusive=False)
    # Within RECHECK_SECONDS a worker may still seal under the old key (both open everything); after it,
    # the new ring is in use.
    later = time.monotonic() + vault.RECHECK_SECONDS + 1
    monkeypatch.setattr(vault.time, "monotonic", lambda: later)
    assert vault.ring() is not first and vault.ring().active == "d2"
    assert vault.encrypt("x", "t.c").startswith("fcx1:d2:")


def test_blind_indexes_are_keyed_and_separated_by_domain(key_file: Path) -> None:
    a = vault.blind("identifier", "phone:+8613800138000")
    assert a == vault.blind("identifier", "phone:+8613800138000")
    assert a != vault.blind("name", "phone:+8613800138000")
    assert "13800138000" not in a and len(a) == 64
