"""The crypto profile is recorded when the platform is created and checked at every start (#18)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fanchaoxin.core import crypto_record
from fanchaoxin.core.crypto import active, profile, profile_of_public_key
from fanchaoxin.core.crypto_record import CryptoProfilePeriod, ProfileMismatch, profile_at
from fanchaoxin.core.settings import get_settings


def test_the_new_platform_records_its_setting(backend):
    with backend.db.session() as s:
        recorded = s.scalars(select(CryptoProfilePeriod)).all()
    assert [r.profile for r in recorded] == [get_settings().crypto_profile]
    assert crypto_record.check(backend.db.engine) == active().name


def test_a_start_under_the_other_profile_is_refused_with_the_way_out(backend, monkeypatch):
    other = "gm" if get_settings().crypto_profile == "international" else "international"
    monkeypatch.setenv("FCX_CRYPTO_PROFILE", other)
    get_settings.cache_clear()
    try:
        with pytest.raises(ProfileMismatch) as info:
            crypto_record.check(backend.db.engine)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert f"fcx crypto migrate --to {other}" in str(info.value)
    assert f"FCX_CRYPTO_PROFILE={get_settings().crypto_profile}" in str(info.value)


def test_each_audit_event_is_read_under_the_period_it_was_hashed_in():
    recorded = [
        crypto_record.Period(profile("international"), 1),
        crypto_record.Period(profile("gm"), 41),
    ]
    assert profile_at(recorded, 1).name == "international"
    assert profile_at(recorded, 40).name == "international"
    assert profile_at(recorded, 41).name == "gm"
    assert profile_at([], 7).name == "international"


def test_a_public_key_names_its_profile():
    for name in ("international", "gm"):
        p = profile(name)
        assert profile_of_public_key(p.generate_signing_key().public_bytes()) is p
    with pytest.raises(ValueError, match="65-byte"):
        profile_of_public_key(b"\x04" * 33)
