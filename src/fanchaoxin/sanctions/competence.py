"""Departments by competence: which memoranda measures a department is instructed for an entry."""

from __future__ import annotations

from typing import Any

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.catalogue import catalogues, punishing_bases
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.policy import measure_catalogue


def department_measures(org: Organisation, entry: Entry) -> dict[str, dict[str, Any]]:
    """measure code → parameters, for one department and one entry graded as it is now."""
    if entry.basis not in punishing_bases():
        return {}
    rank = list(catalogues().severities)
    return {
        d.code: {}
        for d in measure_catalogue().department_measures.values()
        if rank.index(entry.severity) >= rank.index(d.min_severity)
    }
