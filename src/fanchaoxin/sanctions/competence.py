"""Departments by competence (按职责): which memoranda measures a department is instructed for an entry.

A department acts on an entry within its kind's competence (orgs.department_kinds: an entry on a
punishing basis, one of whose behaviours its kind acts on) and applies only the memoranda measures
its kind implements (department_measures.yaml), for the severities, bases and kinds of subject the
基础清单 allows them (basic_list.yaml: serious cases on an administrative or judicial basis). So posts
get an empty-parcel case and public security a personal-data case; a department without a kind gets
nothing. Asked by the one targeting rule, `sanctions.service.targets`.
"""

from __future__ import annotations

from typing import Any

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.orgs.department_kinds import receives
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.basic_list import basic_list
from fanchaoxin.sanctions.policy import measure_catalogue


def department_measures(org: Organisation, entry: Entry) -> dict[str, dict[str, Any]]:
    """measure code → parameters, for one department and one entry graded as it is now."""
    kind = org.department_kind
    if kind is None or not receives(kind, basis=entry.basis, behaviours=entry.behaviours or []):
        return {}
    listed = basic_list()
    rank = list(catalogues().severities)
    return {
        d.code: {}
        for d in measure_catalogue().department_measures.values()
        if kind in d.department_kinds
        and rank.index(entry.severity) >= rank.index(d.min_severity)
        and listed.allows(d.code, severity=entry.severity, basis=entry.basis, subject_kind=entry.subject.kind)
    }
