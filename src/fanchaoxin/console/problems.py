"""Problems (errors) in the reader's language: the one place the console turns a `Problem` or a
pydantic `ValidationError` into words for a person (错误提示).

A problem carries a stable `code` and `params` (core.errors); so does each item of its `errors`
(``input.<pydantic type>``, ``identifier.<rule>``, or a service's own code). The sentences for them are
here, as catalogue message ids (locales/*/LC_MESSAGES/problems.po), with the params put in: codes among
them (a status, an action, a role …) in words through console.labels, sizes in KB/MB, and a field in
words from :data:`FIELDS`. A problem whose code has no sentence here is told by its class's title and a
generic sentence — never by its English `detail`, and never with a field path or a rule tag.

Pages call :func:`describe` (a service's `Problem`) or :func:`form_errors` (a form's
`ValidationError`) and show what they return.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import ValidationError

from fanchaoxin.console import (
    labels,
    problems_agreements,
    problems_consultation,
    problems_coordination,
    problems_rulebooks,
)
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.core.errors import Problem, item_code, pydantic_code, pydantic_error
from fanchaoxin.core.identifiers import RULES
from fanchaoxin.sanctions.policy import measure_catalogue


@dataclass(frozen=True)
class ProblemText:
    """A problem as a page shows it: a title and plain messages, by field where one is named."""

    title: str
    messages: list[str] = field(default_factory=list)
    by_field: dict[str, str] = field(default_factory=dict)


# The title of each problem class of core.errors (by its class code); another class is titled by its
# own `title_zh` / `title`.
TITLES: dict[str, str] = {
    "bad_request": N_("The request could not be completed"),
    "validation": N_("Please check what you entered"),
    "malformed_body": N_("The form could not be read"),
    "unauthenticated": N_("Please sign in"),
    "forbidden": N_("Not allowed"),
    "csrf": N_("The form has expired"),
    "not_found": N_("Nothing found here"),
    "conflict": N_("Not possible now"),
    "payload_too_large": N_("Too large"),
    "unsupported_media_type": N_("File type not accepted"),
    "too_many_requests": N_("Too many requests"),
    "method_not_allowed": N_("Not possible this way"),
    "internal": N_("Something went wrong"),
    "database_unavailable": N_("Temporarily unavailable"),
}

# Problem codes → their sentence. The class codes first: what a reader is told when nothing more
# precise is known.
MESSAGES: dict[str, str] = {
    # requests for material (补正, appeals.supplements)
    "supplement.materials_missing": N_("Say which material is needed."),
    "supplement.materials_too_long": N_("Describe the material in at most {max} characters."),
    "supplement.due_missing": N_("Give the date by which the material is due."),
    "supplement.due_out_of_range": N_("The material must be due after today and at most {max} days ahead."),
    "supplement.case_decided": N_("The case is decided: no more material can be asked for."),
    "supplement.already_waiting": N_("The case already waits for material: close that request first."),
    "supplement.closed": N_("This request for material is closed already. Reload the page."),
    "supplement.not_lapsed": N_("The material is due by {due} inclusive: it has not lapsed yet."),
    "supplement.outcome": N_("Choose how the request for material ended."),
    "supplement.not_found": N_("This case has no such request for material."),
    "bad_request": N_("The request could not be completed. Check what you entered and try again."),
    "validation": N_("Some of what you entered is not valid. Correct it and try again."),
    "validation.address": N_(
        "The address of this page is not valid. Check the link, or start again from the home page."
    ),
    "malformed_body": N_("The form could not be read. Reload the page and try again."),
    "unauthenticated": N_("Sign in to continue; your session may have ended."),
    "forbidden": N_("Your account may not do this. If it should, ask your administrator."),
    "csrf": N_("The form has expired or did not come from this site. Reload the page and send it again."),
    "not_found": N_(
        "What you asked for does not exist, or you may not see it. Check the address or start again "
        "from the home page."
    ),
    "conflict": N_("This cannot be done in the record's present state. Reload the page to see it now."),
    "payload_too_large": N_("What you sent is too large."),
    "unsupported_media_type": N_("This kind of file is not accepted."),
    "too_many_requests": N_("Too many requests in a short time. Wait a moment and try again."),
    "too_many_requests.retry": N_("Too many attempts in a short time. Try again in {seconds} seconds."),
    "method_not_allowed": N_("This page cannot be used this way. Go back and try again."),
    "internal": N_("Something went wrong on our side. It has been logged; please try again later."),
    "database_unavailable": N_("The service is briefly unavailable. Please try again in a moment."),
    "client_error": N_("The request could not be completed. Check what you entered and try again."),
    "server_error": N_("The service could not answer just now. Please try again later."),
    # signing in (登录)
    "signin.wrong_credentials": N_("The username or the password is wrong."),
    "signin.disabled": N_("This account is disabled. Ask your administrator."),
    "signin.key_role": N_("A key of this kind cannot sign in to the console."),
    "signin.api_key_required": N_("Enter the API key."),
    "signin.invalid_key": N_("The API key is not valid. Check it, or ask your administrator for a new one."),
    # an entry's lifecycle (条目)
    "entry.not_found": N_("There is no such entry, or you may not see it."),
    "entry.step_not_allowed": N_(
        "An entry that is “{status}” cannot be given the step “{action}”. Possible now: {allowed}."
    ),
    "entry.final": N_("The entry is “{status}”: its record is closed and takes no further step."),
    "entry.follows_unit": N_(
        "This entry is a liable person's: it follows its unit's entry. Take the step on the unit's entry."
    ),
    "entry.reason_required": N_("Give the reason for this step."),
    "entry.notice_first": N_(
        "A finding about an enterprise is published only after the notice period. Open the notice "
        "period first."
    ),
    "entry.notice_running": N_(
        "The notice period runs until {until} inclusive; the entry can be published after that day."
    ),
    "entry.repair_not_yet": N_("Credit repair is possible from {from}, when the minimum period is over."),
    "entry.not_at_max": N_("The entry has not reached its maximum period yet."),
    "entry.changed": N_("Someone changed this entry at the same time. Reload the page and try again."),
    "entry.no_proposal": N_("This entry has no such proposed identifier."),
    "entry.identifiers_settled": N_(
        "The entry is “{status}”: its identifiers were settled when it was published."
    ),
    "entry.proposal_decided": N_("This identifier has been decided already."),
    # evidence (证据)
    "evidence.too_large": N_("The file is {size}; a file may be at most {limit}."),
    "evidence.empty": N_("The file is empty."),
    "evidence.type_not_allowed": N_(
        "This kind of file is not accepted. Send a PDF, an image (PNG, JPEG, GIF), plain text or CSV."
    ),
    "evidence.type_mismatch": N_("The file's content is not of the type its name or upload says."),
    "evidence.entry_closed": N_("The entry is “{status}”: no more evidence can be added."),
    "evidence.not_found": N_("This entry has no such evidence file."),
    # objections, credit repair and reports (异议、信用修复、举报)
    "case.not_found_by_tracking": N_(
        "No case has this tracking number and secret. Check both and try again."
    ),
    "case.subject_not_proven": N_(
        "No entry in force with this number has a subject with this identifier. Check both and try again."
    ),
    "case.decided": N_("This case was decided already."),
    "case.already_open": N_(
        "An application about this entry is already being handled; wait for its decision."
    ),
    "case.changed": N_("Someone changed this case at the same time. Reload the page and try again."),
    "case.reason_required": N_("Give the reason for the decision."),
    "case.identity_unverified": N_("Record how the person's identity was verified before deciding."),
    "case.entry_not_in_force": N_(
        "The entry is “{status}” already: it left the list another way, and this case cannot change it."
    ),
    "objection.forwarded_already": N_("This objection was forwarded already."),
    "objection.forward_too_late": N_("An objection could be forwarded until {until}; decide it now."),
    "objection.nobody_to_forward_to": N_(
        "The platform submitted this entry itself: there is no organisation to forward the objection to."
    ),
    "objection.not_addressee": N_("Only the organisation the objection was forwarded to can answer it."),
    "objection.no_answer_now": N_("The objection is “{case_status}”; it takes no answer now."),
    "repair.commitment_required": N_(
        "Credit repair needs the credit commitment: read it and confirm that you accept it."
    ),
    "repair.no_proof": N_("Attach the proof of rectification before approving."),
    "report.triaged_already": N_("This report is “{case_status}”: it was dealt with already."),
    "report.unknown_organisation": N_("Choose an active enterprise or department to route the report to."),
    "report.not_addressee": N_("Only the organisation the report was routed to can report its outcome."),
    "report.not_routed": N_("The report is “{case_status}”; it takes no outcome now."),
    "report.entry_not_ours": N_("Link an entry that your organisation submitted."),
    # instructions (指令)
    "instruction.not_found": N_("There is no such instruction, or you may not see it."),
    "instruction.not_addressee": N_(
        "Only the organisation the instruction is addressed to can acknowledge it or report on it."
    ),
    "instruction.changed": N_("Someone changed this instruction at the same time. Try again."),
    "instruction.confirmations": N_("Confirm what was done before reporting the instruction executed."),
    "instruction.reason_required": N_("Say why the execution failed."),
    "instruction.final": N_("The instruction was reported “{instruction_status}”; that report is final."),
    "instruction.executed_in_future": N_("The time of execution cannot be in the future."),
    "instructions.bulk_refused": N_(
        "{refused} of the {total} instructions cannot be acknowledged or reported, so nothing was done. "
        "Each is named below."
    ),
    # subjects (主体)
    "subject.not_found": N_("There is no such subject."),
    "subject.merge_self": N_("A subject cannot be merged into itself."),
    "subject.reason_required": N_("Give the reason."),
    "subject.merged_already": N_("One of the subjects has already been merged into another."),
    "subject.merge_kinds": N_("Subjects of different kinds cannot be merged."),
    "subject.merge_undone": N_("This merge was undone already."),
    "subject.split_needs_identifier": N_("Choose at least one identifier to split off."),
    "subject.identifiers_not_ours": N_("Some of the identifiers chosen are not this subject's."),
    "subject.split_leaves_none": N_("A split must leave the subject at least one identifier."),
    # organisations and API keys (机构与密钥)
    "org.not_found": N_("There is no such organisation."),
    "org.name_empty": N_("Enter the organisation's name."),
    "org.name_taken": N_("An organisation with this name exists already."),
    "org.uscc_taken": N_("An organisation with this unified social credit code exists already."),
    "org.platform_exists": N_("There is a platform organisation already; there can be only one."),
    "org.business_type_needed": N_("An enterprise needs at least one business type."),
    "org.agreement_needed": N_("An enterprise takes part only once it has signed the sharing agreement."),
    "org.business_types_enterprise_only": N_("Only an enterprise has business types."),
    "org.department_kind_departments_only": N_("Only a department has a department kind."),
    "org.department_kind_needed": N_("Choose what kind of department it is."),
    "org.department_kind_unknown": N_("Choose a department kind from the list."),
    "org.users_negative": N_("The number of users cannot be negative."),
    "org.inactive": N_("The organisation is inactive."),
    "key.not_found": N_("There is no such API key."),
    "key.public_role": N_("The public needs no key: choose another role."),
    "key.role_org_kind": N_(
        "The role “{role}” belongs to an organisation of the kind “{expected_kind}”, and this one is "
        "of the kind “{org_kind}”."
    ),
    "key.expiry_range": N_("A key is valid for 1 to {max} days."),
    "key.reason_required": N_("Say why the key is revoked."),
    "key.revoked_already": N_("This key was revoked already."),
    "key.not_manageable": N_("Your role may not manage a key of the role “{key_role}”."),
}

# An item of a problem's `errors` (one field): pydantic's error types, and the types services give.
INPUT_MESSAGES: dict[str, str] = {
    "input.invalid": N_("This is not valid."),
    "input.value_error": N_("This is not valid."),
    "input.assertion_error": N_("This is not valid."),
    "input.missing": N_("This is required."),
    "input.extra_forbidden": N_("This field is not expected here."),
    "input.json_invalid": N_("The form could not be read."),
    "input.string_type": N_("Enter text."),
    "input.string_too_short": N_("Enter at least {min_length} characters."),
    "input.string_too_long": N_("Enter at most {max_length} characters."),
    "input.string_pattern_mismatch": N_("This is not in the expected form."),
    "input.too_short": N_("Give at least {min_length}."),
    "input.too_long": N_("Give at most {max_length}."),
    "input.literal_error": N_("Choose one of the options offered."),
    "input.enum": N_("Choose one of the options offered."),
    "input.int_parsing": N_("Enter a whole number."),
    "input.int_type": N_("Enter a whole number."),
    "input.int_from_float": N_("Enter a whole number."),
    "input.int": N_("Enter a whole number."),
    "input.float_parsing": N_("Enter a number."),
    "input.float_type": N_("Enter a number."),
    "input.decimal_parsing": N_("Enter a number."),
    "input.bool_parsing": N_("Answer yes or no."),
    "input.bool_type": N_("Answer yes or no."),
    "input.bool": N_("Answer yes or no."),
    "input.greater_than_equal": N_("Enter a number of at least {ge}."),
    "input.greater_than": N_("Enter a number greater than {gt}."),
    "input.less_than_equal": N_("Enter a number of at most {le}."),
    "input.less_than": N_("Enter a number less than {lt}."),
    "input.uuid_parsing": N_("This is not a valid record number."),
    "input.uuid_type": N_("This is not a valid record number."),
    "input.date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "input.date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "input.date_type": N_("Enter a date as YYYY-MM-DD."),
    "input.date": N_("Enter a date as YYYY-MM-DD."),
    "input.datetime_parsing": N_("Enter a date and time."),
    "input.datetime_from_date_parsing": N_("Enter a date and time."),
    "input.datetime_type": N_("Enter a date and time."),
    "input.future": N_("This cannot be in the future."),
    "input.confirm": N_("Confirm this, or report the execution as failed with a reason."),
    "input.unknown": N_("This is not asked for here."),
    "input.list_type": N_("Give a list."),
    "input.dict_type": N_("This is not in the expected form."),
    "input.model_type": N_("This is not in the expected form."),
    "input.url_parsing": N_("Enter a web address."),
    "input.url_scheme": N_("Enter a web address starting with https://."),
    "input.media_type": N_("This kind of file is not accepted."),
    "input.media_type_mismatch": N_("The file's content is not of the type its name or upload says."),
}

# Form and schema field names → what the reader calls them. A nested path is looked up by its
# longest known ending ("subject.identifiers[0].value" → "identifiers.value" → "value").
FIELDS: dict[str, str] = {
    "entry_id": N_("Entry no."),
    "entry": N_("Entry no."),
    "entry_ids": N_("Entries"),
    "ids": N_("Selected rows"),
    "items": N_("Selected rows"),
    "identifier_type": N_("Identifier type"),
    "identifier_value": N_("Identifier"),
    "identifier": N_("Identifier"),
    "identifier.type": N_("Identifier type"),
    "identifier.value": N_("Identifier"),
    "identifiers": N_("Identifiers"),
    "identifiers.type": N_("Identifier type"),
    "identifiers.value": N_("Identifier"),
    "identifier_ids": N_("Identifiers"),
    "grounds": N_("Grounds"),
    "contact_email": N_("E-mail for replies"),
    "contact_phone": N_("Mobile number for replies"),
    "contact.email": N_("E-mail for replies"),
    "contact.phone": N_("Mobile number for replies"),
    "email": N_("E-mail"),
    "phone": N_("Mobile phone"),
    "mobile": N_("Mobile phone"),
    "reason": N_("Reason"),
    "outcome": N_("Outcome chosen"),
    "proposed_outcome": N_("Proposed outcome"),
    "q": N_("Search"),
    "by": N_("Search by"),
    "full_name": N_("Person's full name"),
    "name": N_("Name"),
    "subject.name": N_("Subject's name"),
    "name_en": N_("Name in English"),
    "uscc": N_("Unified social credit code (USCC)"),
    "value": N_("Identifier"),
    "type": N_("Identifier type"),
    "kind": N_("Kind"),
    "username": N_("Username"),
    "password": N_("Password"),
    "api_key": N_("API key"),
    "file": N_("Uploaded file"),
    "files": N_("Attached files"),
    "attachments": N_("Attached files"),
    "note": N_("Remarks"),
    "answer": N_("Answer"),
    "text": N_("Text entered"),
    "statement": N_("Statement"),
    "description": N_("Description"),
    "tracking": N_("Tracking number"),
    "tracking_number": N_("Tracking number"),
    "secret": N_("Secret"),
    "action": N_("Action"),
    "version": N_("Version"),
    "role": N_("Role"),
    "label": N_("Label"),
    "expires_in_days": N_("Valid for (days)"),
    "business_types": N_("Lines of business"),
    "agreement_signed_on": N_("Sharing agreement signed on"),
    "declared_users": N_("Number of users declared"),
    "department_kind": N_("Department kind"),
    "executed_at": N_("Time of execution"),
    "confirmations": N_("Execution confirmations"),
    "identity_verification": N_("Identity verification"),
    "corrections": N_("Fields to correct"),
    "addressed_to_org_id": N_("Organisation"),
    "forwarded_to": N_("Forwarded to"),
    "commitment_accepted": N_("Credit commitment"),
    "commitment_text": N_("Credit commitment"),
    "occurred_on": N_("Date it happened"),
    "occurred_from": N_("First day"),
    "occurred_to": N_("Last day"),
    "date_from": N_("First day"),
    "date_to": N_("Last day"),
    "behaviours": N_("Behaviours"),
    "severity": N_("Severity"),
    "basis": N_("Basis"),
    "document_number": N_("Document no. of the decision"),
    "issuing_authority": N_("Authority that decided"),
    "facts": N_("Facts"),
    "scene": N_("Scene of use"),
    "measure": N_("Measure"),
    "status": N_("Status"),
    "page": N_("Page number"),
    "cursor": N_("Page number"),
    "limit": N_("Rows on a page"),
    "posted_on": N_("Posted on"),
    "days": N_("Number of days"),
    "policy": N_("Policy"),
}

# Which vocabulary of console.labels names a param's code.
# Each area of #22 keeps its sentences in its own module (and its own .po file).
for _area in (problems_agreements, problems_rulebooks, problems_consultation, problems_coordination):
    MESSAGES |= _area.MESSAGES
    FIELDS |= _area.FIELDS


_PARAM_VOCABULARY: dict[str, str] = {
    "status": "entry_status",
    "action": "action",
    "outcome": "outcome",
    "case_status": "case_status",
    "instruction_status": "instruction_status",
    "role": "role",
    "key_role": "role",
    "org_kind": "org_kind",
    "expected_kind": "org_kind",
    "type": "identifier",
    "case_kind": "case_kind",
    "proposal_status": "proposal_status",
    "measure": "measure",
}
_SIZES = ("size", "limit")
_INDEX = re.compile(r"\[(\d+)\]")


def _human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if n >= 1024:
        return f"{max(1, round(n / 1024))} KB"
    return f"{n} B"


def _param(name: str, value: Any, locale: str) -> str:
    _ = translator(locale)
    if isinstance(value, (list, tuple)):
        if not value:
            return _("(none)")
        return ("、" if locale == "zh_CN" else ", ").join(_param(name, v, locale) for v in value)
    if name == "allowed":
        return labels.label("action", str(value), locale)
    if name in _PARAM_VOCABULARY and value is not None:
        return labels.label(_PARAM_VOCABULARY[name], str(value), locale)
    if name in _SIZES and isinstance(value, int):
        return _human_size(value)
    if name == "field" and isinstance(value, str):
        return field_label(value, locale) or ""
    return "" if value is None else str(value)


def _render(template: str, params: Mapping[str, Any], locale: str) -> str | None:
    """`template` (already translated) with `params` put in; None when it needs one not given."""
    names = [f for _lit, f, _spec, _conv in string.Formatter().parse(template) if f]
    if any(n not in params for n in names):
        return None
    return template.format(**{n: _param(n, params[n], locale) for n in names})


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def identifier_message(rule: str, params: Mapping[str, Any], locale: str) -> str:
    """A broken identifier rule in the reader's language (core.identifiers.RULES has both words)."""
    _ = translator(locale)
    en, zh = RULES[rule]
    text = zh if locale == "zh_CN" else _capitalised(en)
    got = params.get("got")
    if isinstance(got, int):
        text += _(" (you entered {got})").format(got=got)
    return text + ("" if locale == "zh_CN" else ".")


def message(code: str, params: Mapping[str, Any] | None, locale: str) -> str | None:
    """The sentence for a problem or item code in `locale`, or None when no sentence has it."""
    params = params or {}
    if code.startswith("identifier.") and code[len("identifier.") :] in RULES:
        return identifier_message(code[len("identifier.") :], params, locale)
    template = MESSAGES.get(code) or INPUT_MESSAGES.get(code)
    if template is None:
        return None
    return _render(translator(locale)(template), params, locale)


@cache
def _feedback_fields() -> dict[str, tuple[str, str]]:
    """What an addressee confirms of an executed instruction (`confirmations.<field>`), as the measure
    catalogue words it: field → (Chinese, English)."""
    out: dict[str, tuple[str, str]] = {}
    for measure in measure_catalogue().measures.values():
        for action in measure.actions:
            for f in action.feedback:
                out.setdefault(f.field, (f.zh, f.en))
    return out


def field_label(path: str, locale: str) -> str | None:
    """A field path in words (`identifiers[1].value` → "Identifier (item 2)"), None when unknown.

    The longest known ending of the path names it; failing that, its longest known beginning
    (`confirmations.<a field the catalogue does not know>` → "Execution confirmations")."""
    _ = translator(locale)
    indices = _INDEX.findall(path)
    parts = [p for p in _INDEX.sub("", path).split(".") if p and p not in ("body", "query", "form", "path")]
    if len(parts) == 2 and parts[0] == "confirmations" and parts[1] in _feedback_fields():
        zh, en = _feedback_fields()[parts[1]]
        return zh if locale == "zh_CN" else en
    keys = [".".join(parts[i:]) for i in range(len(parts))] + [
        ".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)
    ]
    for key in keys:
        if key in FIELDS:
            label = _(FIELDS[key])
            if indices:
                label = _("{label} (item {n})").format(label=label, n=int(indices[-1]) + 1)
            return label
    return None


def _with_field(path: str | None, text: str, locale: str) -> str:
    label = field_label(path, locale) if path else None
    if not label:
        return text
    _ = translator(locale)
    return _("{field}: {message}").format(field=label, message=text)


def _item_text(item: Mapping[str, Any], sentence: str | None, locale: str) -> str:
    """One `errors` item in words: its code's sentence, else the problem's own sentence (a service
    that names the field but says why only in English), else the generic one."""
    code, params = item.get("code"), item.get("params")
    if not code:
        code, params = item_code(dict(item))
    text = message(str(code), params or {}, locale)
    generic = code in ("input.invalid", "input.value_error") or text is None
    if generic and sentence:
        return sentence
    return text or translator(locale)(INPUT_MESSAGES["input.invalid"])


def _title(problem: Problem, locale: str) -> str:
    """The catalogue's title of a core.errors class; the own title of a class that names itself
    (e.g. core.auth's InvalidKey: 访问密钥无效), whose words are in both languages already."""
    titled = next(c for c in type(problem).__mro__ if "title" in vars(c))
    code = type(problem).class_code()
    if titled.__module__ == Problem.__module__ and code in TITLES:
        return translator(locale)(TITLES[code])
    return problem.title_zh if locale == "zh_CN" else problem.title


def _sentence(problem: Problem, locale: str) -> tuple[str, bool]:
    """The problem's own sentence, and whether it says more than its class's generic one."""
    code, params = problem.code, dict(problem.params)
    retry = problem.headers.get("Retry-After") or problem.extra.get("retry_after")
    if code == "validation" and problem.errors and all(e.get("in") == "path" for e in problem.errors):
        code = "validation.address"  # a link, not a form: nothing the reader typed is wrong
    if code == "too_many_requests" and retry and str(retry).isdigit():
        code, params = "too_many_requests.retry", {"seconds": int(retry)}
    text = message(code, params, locale)
    if text is not None:
        return text, code not in (type(problem).class_code(), "validation.address")
    text = message(type(problem).class_code(), {}, locale)
    if text is not None:
        return text, False
    fallback = "server_error" if problem.status >= 500 else "client_error"
    return translator(locale)(MESSAGES[fallback]), False


def describe(problem: Problem, locale: str) -> ProblemText:
    """A service's problem in the page's language: its title, its sentence, then one line per field
    (also by field, keyed by the field as the problem names it; "form" for none)."""
    sentence, specific = _sentence(problem, locale)
    messages = [sentence]
    by_field: dict[str, str] = {}
    for err in problem.errors or []:
        path = str(err.get("field") or "") or None
        said = _item_text(err, sentence if specific else None, locale)
        text = _with_field(path, said, locale)
        key = path or "form"
        if key in by_field:
            continue
        by_field[key] = text
        if said != sentence and text not in messages:  # the sentence above says it already
            messages.append(text)
    return ProblemText(_title(problem, locale), messages, by_field)


def form_errors(exc: ValidationError | Problem, locale: str) -> dict[str, str]:
    """A form's errors by field (the form's own field names, nested ones as `a.b` / `a[0].b`; "form"
    for the form as a whole), each in the page's language with the field named in words."""
    if isinstance(exc, Problem):
        text = describe(exc, locale)
        return text.by_field or {"form": " ".join(text.messages)}
    out: dict[str, str] = {}
    for err in exc.errors():
        item = pydantic_error(tuple(err.get("loc", ())), str(err.get("msg", "")), err.get("type"))
        code, params = pydantic_code(err)
        text = message(code, params, locale) or translator(locale)(INPUT_MESSAGES["input.invalid"])
        key = item["field"] or "form"
        out.setdefault(key, _with_field(item["field"], text, locale))
    return out


def all_codes() -> list[str]:
    """Every code a sentence is written for: problems, items and identifier rules."""
    return sorted({*MESSAGES, *INPUT_MESSAGES, *(f"identifier.{r}" for r in RULES)})
