"""Format-preserving masks for `masked` mode: enough to recognise, not to use."""

from __future__ import annotations

from collections.abc import Callable

from server.data.customer_fields import CUSTOMER_FIELDS, Mask


def mask_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) >= 11:
        digits = digits[-11:]
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    if not domain:
        return "***"
    return (local[:1] or "*") + "***@" + domain


def mask_national_id(value: str) -> str:
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_bank_card(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return "**** " + digits[-4:] if len(digits) >= 4 else "****"


def mask_name(value: str) -> str:
    if not value:
        return value
    return value[0] + "*" * max(len(value) - 1, 1)


def mask_text(value: str) -> str:
    return "***" if value else value


def mask_date(value: str) -> str:
    # A birthday keeps month and day (care reminders) but hides the year.
    return "****" + value[4:] if len(value) == 10 else "***"


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
