"""The platform's crypto profile as recorded in its database (密码配置记录, #18).

The profile is chosen when the platform is created (the migration that makes this table records
``FCX_CRYPTO_PROFILE`` on an empty database, ``international`` on one that already holds data, since
everything before it was) and every start checks the setting against the record: a platform created
under one profile never silently runs under the other, which would make its audit chain, evidence
addresses, blind indexes and sealed personal data unreadable. Changing the profile is a migration with
a command (``fcx crypto migrate --to``), which appends a period here.

Each period says from which audit event on the chain is hashed under its profile, so that
``fcx audit verify`` walks a chain that changed profile without rewriting its history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from fanchaoxin.core.crypto import Profile, profile
from fanchaoxin.core.db import Base, UTCDateTime, utcnow
from fanchaoxin.core.settings import get_settings


class CryptoProfilePeriod(Base):
    """From audit event ``since_seq`` on, the platform ran under ``profile``."""

    __tablename__ = "crypto_profile_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile: Mapped[str] = mapped_column(String(32))
    since_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    since_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProfileMismatch(RuntimeError):
    """``FCX_CRYPTO_PROFILE`` is not the profile recorded in the database: nothing is served."""


@dataclass(frozen=True)
class Period:
    profile: Profile
    since_seq: int


def periods(bind: Session | Connection | Engine) -> list[Period]:
    """The recorded periods, oldest first (empty on a database migrated before the record existed)."""
    stmt = select(CryptoProfilePeriod.profile, CryptoProfilePeriod.since_seq).order_by(
        CryptoProfilePeriod.since_seq, CryptoProfilePeriod.id
    )
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            rows = conn.execute(stmt).all()
    else:
        rows = list(bind.execute(stmt).all())
    return [Period(profile(name), int(seq)) for name, seq in rows]


def profile_at(recorded: list[Period], seq: int) -> Profile:
    """The profile audit event ``seq`` was hashed under."""
    current = recorded[0].profile if recorded else profile("international")
    for period in recorded:
        if period.since_seq <= seq:
            current = period.profile
        else:
            break
    return current


def recorded_profile(bind: Session | Connection | Engine) -> str | None:
    """The profile in force, or None for a database made before the record (or not made yet)."""
    inspector = inspect(bind.connection() if isinstance(bind, Session) else bind)
    if not inspector.has_table(CryptoProfilePeriod.__tablename__):
        return None
    recorded = periods(bind)
    return recorded[-1].profile.name if recorded else None


def check(bind: Session | Connection | Engine) -> str:
    """The recorded profile, after checking that the setting agrees; :class:`ProfileMismatch` if not."""
    setting = get_settings().crypto_profile
    recorded = recorded_profile(bind)
    if recorded is None or recorded == setting:
        return setting
    raise ProfileMismatch(
        f"this platform's database was created under the {recorded!r} crypto profile, but "
        f"FCX_CRYPTO_PROFILE is {setting!r}. Set FCX_CRYPTO_PROFILE={recorded} to run it as it is; "
        f"changing the profile rewrites keys, indexes and sealed data: run `fcx crypto migrate --to "
        f"{setting}` with the platform stopped."
    )


def start_period(session: Session, name: str, since_seq: int) -> None:
    """Record that audit events from ``since_seq`` on are hashed under ``name`` (the migration command)."""
    profile(name)  # UnknownProfile on a typo, before anything is written
    session.add(CryptoProfilePeriod(profile=name, since_seq=since_seq, since_at=utcnow()))
