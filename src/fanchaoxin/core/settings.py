"""All configuration in one place, read from the environment with the prefix `FCX_`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FCX_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///var/fcx.db",
        description="SQLAlchemy URL. SQLite file (embedded default) or postgresql+psycopg://user@host/db.",
    )
    database_echo: bool = False
    # A request must end within its budget even when the database is frozen or gone (faults: 503).
    database_connect_timeout_seconds: float = Field(
        5, gt=0, description="Give up connecting to the database after this long."
    )
    database_statement_timeout_seconds: float = Field(
        30, ge=0, description="Cancel one SQL statement after this long (PostgreSQL; 0: no limit)."
    )
    database_lock_timeout_seconds: float = Field(
        10, ge=0, description="Give up waiting for a row lock after this long (PostgreSQL; 0: no limit)."
    )
    database_pool_timeout_seconds: float = Field(
        5, gt=0, description="Give up waiting for a free pooled connection after this long."
    )
    database_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with a 503 while the database is unreachable."
    )

    # HTTP
    max_body_bytes: int = Field(2 * 1024 * 1024, description="Largest request body accepted, in bytes.")
    max_upload_bytes: int = Field(
        64 * 1024 * 1024, description="Largest body accepted on bulk-upload and evidence routes, in bytes."
    )

    # Logs of `fcx serve` and `fcx node serve` (core.logs, #23): JSON lines for a collector, text for a
    # person at a terminal; auto picks text when stderr is a terminal.
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="Log lines: json (one object per line, with request_id), text, or auto (text on a "
        "terminal, json otherwise).",
    )
    metrics_queue_cache_seconds: float = Field(
        15, ge=0, description="Queue gauges on /metrics are counted at most this often (seconds)."
    )

    # API keys
    api_key_default_days: int = Field(365, description="Lifetime of a new API key unless told otherwise.")
    api_key_max_days: int = Field(3 * 365, description="Longest lifetime a key may be given.")

    # Logs are kept at least five years (DESIGN.md §2), then pruned by the scheduler (`fcx jobs run`).
    audit_retention_years: int = Field(
        5,
        ge=5,
        description="Years audit events and decision-log records are kept before the scheduler prunes them "
        "(at least 5: DESIGN.md §2).",
    )

    # The crypto profile (密码配置, #18): chosen when the platform is created and recorded in the database
    # (core.crypto_record); a different value later refuses to start. Changing it is `fcx crypto migrate`.
    crypto_profile: Literal["international", "gm"] = Field(
        "international",
        description="Algorithms for digests, MACs, signatures and encryption at rest: `international` "
        "(SHA-256, HMAC-SHA256, Ed25519, AES-256-GCM) or `gm` (国密: SM3, HMAC-SM3, SM2, SM4-GCM). "
        "Recorded when the platform is created; changing it is `fcx crypto migrate --to`, not this flag.",
    )

    # Personal data at rest (core.vault): the data key ring. Back it up apart from the database.
    data_key_file: str = Field(
        "var/keys/data.json",
        description="Data key ring (AES-256-GCM keys and the blind-index key), mode 0600. Missing or "
        "malformed: nothing is served. Created on the first start of an empty platform only when "
        "left at its default; a path given explicitly must exist.",
    )

    # One budget for plain-identifier matching per enterprise (decisions, look-ups) and one for blinded
    # evaluations; per-organisation values override these defaults (`fcx orgs quota`).
    quota_plain_per_minute: int = Field(
        600, ge=0, description="Plain identifiers an enterprise may have matched per minute."
    )
    quota_plain_per_day: int = Field(
        20_000, ge=0, description="Plain identifiers an enterprise may have matched per day."
    )
    quota_evaluations_per_minute: int = Field(
        60_000, ge=0, description="Blinded evaluations an enterprise may ask for per minute."
    )
    plain_batch_max: int = Field(
        100, ge=1, description="Most plain identifiers in one decision or look-up request."
    )
    enumeration_window_seconds: int = Field(
        3600, ge=60, description="Window in which an enterprise's misses are compared for enumeration."
    )
    enumeration_threshold: int = Field(
        25,
        ge=3,
        description="Misses of one enterprise in one structured family (values alike but for a run of "
        "digits) within the window that raise the enumeration alarm.",
    )
    decision_log_flush_seconds: float = Field(
        0.5, gt=0, description="Decision-log records are written in batches at most this long apart."
    )

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
    node_silent_alert_seconds: int = Field(
        600, gt=0, description="An enterprise node that has not reported its status for longer is flagged."
    )
    auth_cache_seconds: float = Field(
        30,
        ge=0,
        description="Reuse an authenticated API key for this long without a database query (0: never). "
        "A revocation takes effect at once in the process that made it, within this time in the others.",
    )
    auth_revocation_check_seconds: float = Field(
        1,
        gt=0,
        description="Each process checks this often whether a key was revoked or an organisation "
        "deactivated anywhere, and then forgets its cached keys (a revocation holds everywhere within this).",
    )
    trusted_proxies: str = Field(
        "",
        description="Addresses (comma-separated; CIDR allowed) of reverse proxies whose X-Forwarded-For is "
        "believed. Empty: none — the peer address is the client, whatever headers say.",
    )

    # Due process (appeals): objections (异议), credit repair (信用修复), reports (举报); PRC working days.
    objection_dispute_working_days: int = Field(
        0, description="An objection marks its entry disputed within this many working days (0: at once)."
    )
    objection_decide_working_days: int = Field(5, description="The platform decides an objection within.")
    objection_forward_working_days: int = Field(
        2, description="…or forwards it to the reporting organisation within this many working days."
    )
    objection_answer_working_days: int = Field(
        5, description="The reporting organisation answers a forwarded objection within."
    )
    objection_decide_after_answer_working_days: int = Field(
        2, description="The platform decides a forwarded objection this long after the answer is due."
    )
    repair_decide_working_days: int = Field(5, description="A credit repair application is decided within.")
    # The NDRC credit-repair measures (2023) require a credit commitment and keep it on record, but set no
    # term for checking it: 12 months from the approval is this platform's default.
    commitment_term_months: int = Field(
        12, ge=1, description="A credit commitment (信用承诺) made for repair is tracked this long."
    )
    report_handle_working_days: int = Field(10, description="The recipient handles a routed report within.")
    attachment_max_bytes: int = Field(
        10 * 1024 * 1024, description="Largest attachment to an objection, repair application or report."
    )
    attachment_max_count: int = Field(10, description="Most attachments on one case.")
    agreement_pdf_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest signed information-sharing agreement (PDF) accepted."
    )
    # Public forms (no key): token buckets per client address and per reported identifier / entry.
    public_rate_per_address: int = Field(10, description="Public filings per client address per window.")
    public_rate_address_window_seconds: int = 3600
    public_rate_per_target: int = Field(
        5, description="Public filings about one identifier (or one entry) per window."
    )
    public_rate_target_window_seconds: int = 86400
    # Notifications to objectors, applicants and reporters.
    notifier: str = Field("log", description="log (keeps messages in memory and logs them) or smtp.")
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "noreply@fanchaoxin.org"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = 10.0
    # The notice before listing (告知书) by SMS: `log` records and logs (number masked); a provider's
    # client is installed with appeals.sms.set_sms_sender.
    sms_backend: str = Field("log", description="SMS backend for notices: log.")
    public_base_url: str = Field(
        "", description="Printed before the public forms' paths in notices (e.g. https://fcx.example.cn)."
    )

    # Sharing (DESIGN §4, docs/sharing.md): keys, feed files, blinded-evaluation quotas, webhooks.
    sharing_key_dir: str = Field(
        "var/keys",
        description="OPRF key ring and feed-signing key (Ed25519 or SM2 per the crypto profile; files, "
        "mode 0600).",
    )
    sharing_dir: str | None = Field(
        None, description="Where built snapshots are kept; default: the key dir's sibling `sharing/`."
    )
    sharing_snapshot_every_events: int = Field(
        10_000, description="Build a new snapshot once the feed head is this many events past the last."
    )
    sharing_tag_workers: int = Field(2, description="Processes that compute identifier tags in bulk.")
    sharing_evaluations_per_user: float = Field(
        3.0, description="Daily blinded evaluations per declared user (enrolment, new users, re-tagging)."
    )
    sharing_min_daily_evaluations: int = Field(
        10_000, description="Daily blinded evaluations of an enterprise with few or no declared users."
    )
    sharing_rotation_overlap_days: int = Field(
        14, description="Days both the old and the new OPRF key are in use after a rotation."
    )
    sharing_deliver_interval_seconds: float = Field(
        1.0, description="How often `fcx serve` looks for due webhook deliveries."
    )
    sharing_webhook_timeout_seconds: float = 10.0
    sharing_webhook_allow_private: bool = Field(
        False,
        description="Allow webhook URLs that resolve to loopback or private addresses (a private network "
        "between the platform and its receivers; tests). Off, such URLs are refused (SSRF).",
    )
    sharing_webhook_max_attempts: int = Field(10, description="A delivery is dead after this many failures.")
    sharing_webhook_backoff_base_seconds: float = 2.0
    sharing_webhook_backoff_cap_seconds: float = 3600.0

    # The platform's decision index (sanctions.index, sanctions.packed): shared by a host's workers.
    decision_index: Literal["auto", "packed", "memory"] = Field(
        "auto",
        description="Where the API workers keep the entries in force for decisions: `packed` (one "
        "memory-mapped file per host, shared by every worker, plus each worker's changes since it was "
        "built), `memory` (a full index in each worker) or `auto` (packed for `fcx serve`, memory "
        "for an embedded app).",
    )
    decision_index_dir: str = Field(
        "var/index",
        description="Where the packed decision index is kept (one file per database, its lock beside it), "
        "on a local file system of the host: its workers map the same pages of it. /dev/shm keeps it off "
        "the disk where that is large enough (a container's is often 64 MB).",
    )
    decision_index_rebuild_entries: int = Field(
        50_000,
        ge=1,
        description="Rebuild the packed decision index once this many entries changed since it was built.",
    )
    decision_index_rebuild_seconds: float = Field(
        1800,
        ge=0,
        description="Rebuild the packed decision index once it is this old and some entry changed since "
        "(seconds; 0: only by the number of changes).",
    )

    # Web console (/console)
    console_secret_key: str | None = Field(
        None,
        description="Signs console cookies and CSRF tokens; unset: a random key kept in the database.",
    )
    console_session_hours: int = Field(12, description="A console sign-in lasts this long.")
    console_login_attempts: int = Field(10, description="Sign-in attempts per client address per window.")
    console_login_window_seconds: int = 300
    console_query_rate_per_address: int = Field(
        30, description="Public blacklist queries per client address per window."
    )
    console_query_window_seconds: int = 60


    # Backup and restore (operations.backup, `fcx backup`, `fcx restore`): the scheduled set of the jobs loop.
    backup_dir: str | None = Field(
        None,
        description="Where the jobs loop of `fcx serve` writes a backup set (database, sealed keys, "
        "manifest) every FCX_BACKUP_EVERY_HOURS; unset: no scheduled backup.",
    )
    backup_every_hours: float = Field(
        24, gt=0, description="A scheduled backup is taken once the newest complete set is this old."
    )
    backup_keep: int = Field(
        7, ge=1, description="Scheduled backups keep this many newest sets (never fewer than one complete)."
    )
    backup_passphrase_file: str | None = Field(
        None,
        description="A file holding the passphrase the keys of a backup are sealed under (scrypt + "
        "AES-256-GCM; PBKDF2-HMAC-SM3 + SM4-GCM under gm). Needed by a scheduled backup unless "
        "FCX_BACKUP_KEYS_TO is set.",
    )
    backup_keys_to: str | None = Field(
        None,
        description="Instead of sealing them: a folder apart from FCX_BACKUP_DIR where a scheduled "
        "backup exports the key files in plain (mode 0600), one sub-folder per set.",
    )

    @model_validator(mode="after")
    def _a_scheduled_backup_knows_where_its_keys_go(self) -> Settings:
        # Refused at start rather than failing at every run of the jobs loop: without one of the two the
        # keys would sit in plain next to the database, or the set would lack them (#23).
        if self.backup_dir and not (self.backup_passphrase_file or self.backup_keys_to):
            raise ValueError(
                "FCX_BACKUP_DIR 已设置，但未设置 FCX_BACKUP_PASSPHRASE_FILE 或 FCX_BACKUP_KEYS_TO："
                "定时备份不知道密钥放在哪里 / FCX_BACKUP_DIR is set without FCX_BACKUP_PASSPHRASE_FILE or "
                "FCX_BACKUP_KEYS_TO: a scheduled backup would not know where the keys go"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
