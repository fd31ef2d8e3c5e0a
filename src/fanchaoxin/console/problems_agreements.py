"""Sentences for the agreements problems (#22), merged into console.problems: codes → catalogue message ids,
and field names → words. Their msgids live in locales/*/LC_MESSAGES/agreements.po."""

from __future__ import annotations

from fanchaoxin.console.i18n import N_

MESSAGES: dict[str, str] = {
    # refusals of the shared list, evaluation and instructions (core.permissions.require_agreement)
    "agreement.none": N_(
        "This enterprise has no sharing agreement in force: the shared list, blinded evaluation and "
        "instructions are refused until it signs."
    ),
    "agreement.applied": N_(
        "This enterprise has applied but not signed the sharing agreement yet: the shared list, blinded "
        "evaluation and instructions are refused until it signs."
    ),
    "agreement.suspended": N_("The platform has suspended this enterprise's sharing agreement: {reason}."),
    "agreement.withdrawn": N_("This enterprise has withdrawn from the joint action."),
    "agreement.lapsed": N_(
        "This enterprise's sharing agreement has lapsed: it must sign the current version."
    ),
    # bad input and steps out of turn (orgs.agreements)
    "agreement.version_not_current": N_("Only the current version of the agreement can be signed."),
    "agreement.not_pdf": N_("The signed agreement must be a PDF file."),
    "agreement.pdf_too_large": N_("The file is {size}; the signed agreement may be at most {limit}."),
    "agreement.signed_in_future": N_("The day of signing must not be in the future."),
    "agreement.signatory_required": N_("Say who signed the agreement."),
    "agreement.field_required": N_("Fill in this field."),
    "agreement.field_too_long": N_("This text is too long: at most {max} characters."),
    "agreement.published_before_latest": N_("A new version must not be published before the latest one."),
    "agreement.resign_by_before_publication": N_(
        "The day to re-sign by must come after the day of publication."
    ),
    "agreement.resign_by_past": N_("The day to re-sign by must not be in the past."),
    "agreement.version_exists": N_("This version of the agreement exists already."),
    "agreement.enterprise_only": N_("Only an enterprise signs the sharing agreement."),
    "agreement.already_applied": N_("The enterprise has already applied."),
    "agreement.is_suspended": N_("The enterprise is suspended: the platform must lift the suspension first."),
    "agreement.is_withdrawn": N_("The enterprise has withdrawn: it must apply again first."),
    "agreement.already_signed": N_("The enterprise has already signed this version."),
    "agreement.reason_required": N_("Say why."),
    "agreement.already_suspended": N_("The enterprise is suspended already."),
    "agreement.not_suspended": N_("The enterprise is not suspended."),
    "agreement.already_withdrawn": N_("The enterprise has withdrawn already."),
    "agreement.no_version": N_("No version of the agreement is published yet."),
    "agreement.signature_not_found": N_("There is no such signature."),
    "agreement.date_invalid": N_("Give a date, for example 2026-03-01."),
}
FIELDS: dict[str, str] = {
    "signatory": N_("Signatory"),
    "signatory_title": N_("Signatory's title"),
    "signed_on": N_("Signed on"),
    "published_on": N_("Published on"),
    "resign_by": N_("Re-sign by"),
    "text_zh": N_("Text (Chinese)"),
    "summary_en": N_("English summary"),
}
