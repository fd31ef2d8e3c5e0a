"""Tables of the web console: staff users who sign in with a password, their sessions, the signing key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow


class ConsoleUser(Base):
    """A person who signs in to the console with a password; acts with one role of one organisation."""

    __tablename__ = "console_users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    # `core.crypto.hash_password`'s self-describing scheme$params$salt$hash (the profile's password
    # hash, base64); never the password itself.
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def snapshot(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "username": self.username,
            "display_name": self.display_name,
            "owner_org_id": str(self.owner_org_id),
            "role": self.role,
            "active": self.active,
        }


class ConsoleSession(Base):
    """A signed-in browser. The cookie carries the signed token; only its digest (the crypto
    profile's) is stored here.

    A session opened with an API key follows the key: once the key is revoked or expires, so is the
    session (checked on every request).
    """

    __tablename__ = "console_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("console_users.id"), index=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class ConsoleSecret(Base):
    """The key that signs cookies and CSRF tokens, made on first start (unless FCX_CONSOLE_SECRET_KEY)."""

    __tablename__ = "console_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
