"""Sentences for the rulebooks problems (#22), merged into console.problems: codes → catalogue message ids,
and field names → words. Their msgids live in locales/*/LC_MESSAGES/rulebooks.po."""

from __future__ import annotations

from fanchaoxin.console.i18n import N_

MESSAGES: dict[str, str] = {
    "rulebook.unknown_measure": N_(
        "There is no measure {value}: name one of the 13 measures by its code or its number (1-13)."
    ),
    "rulebook.duplicate_measure": N_("Measure {measure} is ruled twice: give each measure one rule."),
    "rulebook.applicable_required": N_("Say whether its rules allow the measure."),
    "rulebook.clause_required": N_(
        "Cite the clause of the user agreement or platform rules that allows or excludes the measure."
    ),
    "rulebook.clause_too_long": N_("The clause may have at most {max} characters."),
    "rulebook.bad_rule": N_("A rule names a measure, whether it is allowed, and its clause."),
    "rulebook.not_enterprise": N_("Only an enterprise has a rulebook."),
    "rulebook.not_own": N_("Only the enterprise itself sets its rulebook."),
}
FIELDS: dict[str, str] = {
    "rules": N_("Rule"),
    "rules.measure": N_("Measure of the rule"),
    "rules.applicable": N_("By its rules"),
    "rules.clause": N_("Clause of its rules"),
}
