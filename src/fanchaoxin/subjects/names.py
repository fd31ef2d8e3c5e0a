"""Names of subjects: display form and the key used to compare them.

Company names arrive in many spellings of the same registration: full-width and half-width
characters, Chinese and Latin brackets, `有限责任公司` for `有限公司`, stray spaces. The display
form keeps the name readable; the key folds those variants so that comparisons see one name.
"""

from __future__ import annotations

import re
import unicodedata

_BRACKETS = str.maketrans(
    {"（": "(", "）": ")", "【": "(", "】": ")", "[": "(", "]": ")", "〔": "(", "〕": ")"}
)
_SPACES = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u9fff]")
# Longest first: the same legal form written several ways.
_LEGAL_FORMS = (
    ("股份有限公司", "股份有限公司"),
    ("有限责任公司", "有限公司"),
    ("有限公司", "有限公司"),
)


def display_name(name: str) -> str:
    """NFKC (full width → half width), one kind of bracket, no spaces between Chinese characters."""
    text = unicodedata.normalize("NFKC", name).translate(_BRACKETS).strip()
    text = _SPACES.sub(" ", text)
    if _CJK.search(text):
        # Spaces inside Chinese names are typing noise; keep them only between Latin words.
        text = re.sub(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])", "", text)
    return text


def name_key(name: str) -> str:
    """The comparison key: display form, case-folded, brackets and legal-form variants folded."""
    text = display_name(name).casefold()
    for variant, canonical in _LEGAL_FORMS:
        if text.endswith(variant):
            text = text[: -len(variant)] + canonical
            break
    text = text.replace("(", "").replace(")", "").replace(" ", "")
    return text
