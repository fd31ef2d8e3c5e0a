"""All configuration in one place, read from the environment with the prefix `FCX_`."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FCX_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///var/fcx.db",
        description="SQLAlchemy URL. SQLite file (embedded default) or postgresql+psycopg://user@host/db.",
    )
    database_echo: bool = False

    # HTTP
    max_body_bytes: int = Field(2 * 1024 * 1024, description="Largest request body accepted, in bytes.")
    max_upload_bytes: int = Field(
        64 * 1024 * 1024, description="Largest body accepted on bulk-upload and evidence routes, in bytes."
    )

    # API keys
    api_key_default_days: int = Field(365, description="Lifetime of a new API key unless told otherwise.")
    api_key_max_days: int = Field(3 * 365, description="Longest lifetime a key may be given.")

    # Logs are kept at least five years (DESIGN.md §2); the platform never deletes audit rows itself.
    audit_retention_years: int = 5

    timezone_display: str = "Asia/Shanghai"

    # Due process (DESIGN.md §2), in PRC working days.
    notice_working_days: int = Field(
        5, description="告知 + 陈述申辩 period before an enterprise finding is published."
    )

    instruction_ack_working_days: int = Field(
        3, description="Working days an enterprise has to acknowledge an instruction before it is overdue."
    )

    # Evidence files
    evidence_max_bytes: int = Field(20 * 1024 * 1024, description="Largest evidence file, in bytes.")

    # Background jobs inside `fcx serve` (expiry, deadlines); 0 disables the loop.
    jobs_interval_seconds: int = 300


@lru_cache
def get_settings() -> Settings:
    return Settings()
