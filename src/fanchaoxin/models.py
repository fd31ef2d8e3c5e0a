"""Every table of the platform, imported once so that Alembic and the tests see the whole schema."""

from fanchaoxin.core.audit import AuditChainHead, AuditEvent
from fanchaoxin.core.db import Base
from fanchaoxin.orgs.models import ApiKey, Organisation

__all__ = ["ApiKey", "AuditChainHead", "AuditEvent", "Base", "Organisation"]
