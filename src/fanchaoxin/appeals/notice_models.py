"""Tables of the notice before listing (告知书) and the subject's statements (陈述申辩)."""

from __future__ import annotations
