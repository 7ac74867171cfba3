"""Format-preserving masks for `masked` mode: enough to recognise, not to use.

Each mask shows a fixed shape, so it never tells a value's length, and keeps only the
part a person needs to confirm who they are talking to (the README lists each and why).
The field registry (server/data/customer_fields.py) names each field's mask.
"""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers

from server.data.customer_fields import CUSTOMER_FIELDS, Mask


def mask_phone(value: str) -> str:
    # 3 + 4 of the number as dialled at home: the display mainland services use to let a
    # caller confirm their number (138****5678, a Beijing landline 010****9988).
    digits = "".join(ch for ch in _national(value) if ch.isdigit())
    if len(digits) >= 11:
        digits = digits[-11:]
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def _national(value: str) -> str:
    """A stored E.164 number in its country's national format (trunk prefix included)."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not domain:
        return "***"
    return (local[:1] or "*") + "***@" + domain


def mask_national_id(value: str) -> str:
    # Last four only: the leading digits are the region of birth and, with the birthday,
    # leave a handful of check-digit-valid numbers to try.
    if len(value) <= 8:
        return "*" * 18
    return "*" * 14 + value[-4:]


def mask_bank_card(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return "**** " + digits[-4:] if len(digits) >= 4 else "****"


def mask_name(value: str) -> str:
    # First character (a Chinese surname, a Western initial) and a fixed tail: the
    # length of a name narrows it down.
    if not value:
        return value
    return value[0] + "**"


def mask_text(value: str) -> str:
    return "***" if value else value


def mask_date(value: str) -> str:
    # A birthday keeps its year (an age band) and hides month and day: year, month and
    # day together identify a person among a few thousand.
    return value[:4] + "-**-**" if len(value) == 10 else "***"


# Each mask the customer field registry can name, by kind.
MASKS: dict[Mask, Callable[[str], str]] = {
    Mask.TEXT: mask_text,
    Mask.NAME: mask_name,
    Mask.PHONE: mask_phone,
    Mask.EMAIL: mask_email,
    Mask.NATIONAL_ID: mask_national_id,
    Mask.BANK_CARD: mask_bank_card,
    Mask.DATE: mask_date,
}
CUSTOMER_MASKS: dict[str, Mask] = {f.name: f.mask for f in CUSTOMER_FIELDS if f.mask is not None}


def mask(field: str, value: str) -> str:
    """A customer field masked as the registry declares; other sealed text is masked whole."""
    return MASKS[CUSTOMER_MASKS.get(field, Mask.TEXT)](value)
