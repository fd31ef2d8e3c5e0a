"""The enterprise node (`fcx node`): the service each participating enterprise runs (issue #5).

It keeps its own SQLite store (:mod:`.store`), follows the platform's signed feed (:mod:`.sync`), turns the
enterprise's own identifiers into tags by blinded evaluation (:mod:`.enroll`), and answers decisions over
HTTP (:mod:`.app`) and in process (:class:`Node`).
"""

from __future__ import annotations

from fanchaoxin.node.sdk import Node

__all__ = ["Node"]
