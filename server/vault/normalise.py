"""Canonical forms of searchable contact values, so equal facts give equal blind indexes.
The one home of phone, email, national-ID, bank-card and WeChat-ID normalisation: every
path (API, imports, demo data, lookups) checks and stores values through these functions.

Every check is linear in its input and looks at the length first: a value longer than
any real one is refused before a pattern or a loop reads it (an email pattern with two
unbounded runs took 20 s on `"a@" + "." * 32000 + "@"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers

from server.data.customer_fields import CUSTOMER_FIELDS, Normaliser
from server.errors import ValidationError

# Longest raw inputs the checks read, separators and surrounding spaces included.
MAX_PHONE_INPUT = 32
MAX_EMAIL = 254
MAX_EMAIL_INPUT = 320
MAX_NATIONAL_ID_INPUT = 36
MAX_BANK_CARD_INPUT = 48
MAX_WECHAT_ID = 20
# National numbers without a country code are read as this region's (ISO 3166 code).
DEFAULT_PHONE_REGION = "CN"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# WeChat's own rule for IDs: 6 to 20 letters, digits, `_` or `-`, starting with a letter.
_WECHAT_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{5,19}")
# What a contact point's value is found by (`point_search_key`): its kind of index.
POINT_PHONE, POINT_WECHAT = "phone", "wechat"


def normalise_phone(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """E.164 (`+` and digits) of a number valid for its country, parsed and validated with
    the `phonenumbers` library: national numbers are read in `region` (mainland China by
    default, so `138 1234 5678` and the landline `010-6552 9988` both work), numbers with
    `+` or `00` in their own country. A number no country would dial (`138 1234`) is
    refused rather than stored as something else."""
    if len(value) > MAX_PHONE_INPUT:
        raise _bad_phone()
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise _bad_phone() from None
    if number.extension or not phonenumbers.is_valid_number(number):
        raise _bad_phone()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _bad_phone() -> ValidationError:
    return ValidationError("phone is not a valid phone number", code="INVALID_PHONE", field="phone")


def email_is_valid(email: str) -> bool:
    """One `@` between a non-empty local part and a domain with a dot inside it (not
    first, not last), no whitespace anywhere: the former pattern's rule, checked in
    linear time instead of by backtracking."""
    if len(email) > MAX_EMAIL:
        return False
    local, at, domain = email.partition("@")
    return (
        bool(at and local)
        and "@" not in domain
        and "." in domain[1:-1]
        and not any(ch.isspace() for ch in email)
    )


def normalise_email(value: str) -> str:
    if len(value) > MAX_EMAIL_INPUT:
        raise _bad_email()
    email = value.strip().lower()
    if not email_is_valid(email):
        raise _bad_email()
    return email


def _bad_email() -> ValidationError:
    return ValidationError("email is not a valid address", code="INVALID_EMAIL", field="email")


def national_id_is_valid(value: str) -> bool:
    """Mainland resident ID (GB 11643-1999): 17 digits and an ISO 7064 MOD 11-2 check."""
    if len(value) != 18 or not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


def national_id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalise_national_id(value: str) -> str:
    nid = "" if len(value) > MAX_NATIONAL_ID_INPUT else re.sub(r"\s", "", value).upper()
    if not national_id_is_valid(nid):
        raise ValidationError(
            "national ID has a bad format or checksum",
            code="INVALID_NATIONAL_ID",
            field="national_id",
        )
    return nid


def luhn_is_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def normalise_bank_card(value: str) -> str:
    digits = "" if len(value) > MAX_BANK_CARD_INPUT else re.sub(r"[\s\-]", "", value)
    if not re.fullmatch(r"\d{12,19}", digits) or not luhn_is_valid(digits):
        raise ValidationError(
            "bank card number has a bad format or checksum",
            code="INVALID_BANK_CARD",
            field="bank_card",
        )
    return digits


def wechat_id_is_valid(value: str) -> bool:
    return len(value) <= MAX_WECHAT_ID and _WECHAT_ID.fullmatch(value) is not None


def normalise_wechat_id(value: str) -> str:
    """A WeChat ID as it is searched for: WeChat treats IDs without case (`ZhangSan_88`
    and `zhangsan_88` are one account), so the search form is lower-case. Stored points
    keep the ID as written; only their index and lookups use this form."""
    text = "" if len(value) > MAX_WECHAT_ID + 8 else value.strip()
    if not wechat_id_is_valid(text):
        raise ValidationError(
            "a WeChat ID is 6 to 20 letters, digits, _ or -, starting with a letter",
            code="INVALID_WECHAT_ID",
            field="wechat",
        )
    return text.lower()


def point_search_key(stored: str) -> tuple[str, str]:
    """What a contact point's stored (canonical) value is found by: a number by its E.164
    form without the extension (a caller dials the number; `;ext=` only routes inside a
    switchboard), a WeChat ID case-folded. The two canonical forms never overlap: a number
    starts with `+`, a WeChat ID with a letter."""
    if stored.startswith("+"):
        return POINT_PHONE, stored.split(";", 1)[0]
    return POINT_WECHAT, stored.lower()


# Each canonical form the customer field registry can name, by kind.
NORMALISERS: dict[Normaliser, Callable[[str], str]] = {
    Normaliser.PHONE: normalise_phone,
    Normaliser.EMAIL: normalise_email,
    Normaliser.NATIONAL_ID: normalise_national_id,
    Normaliser.BANK_CARD: normalise_bank_card,
}
# Customer field → its canonical form, as the registry declares.
CUSTOMER_NORMALISERS: dict[str, Callable[[str], str]] = {
    f.name: NORMALISERS[f.normaliser] for f in CUSTOMER_FIELDS if f.normaliser is not None
}
