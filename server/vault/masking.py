"""Format-preserving masks for `masked` mode: enough to recognise, not to use."""

from __future__ import annotations

from collections.abc import Callable


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


MASKS: dict[str, Callable[[str], str]] = {
    "phone": mask_phone,
    "email": mask_email,
    "national_id": mask_national_id,
    "bank_card": mask_bank_card,
    "name": mask_name,
    "birthday": mask_date,
}


def mask(field: str, value: str) -> str:
    return MASKS.get(field, mask_text)(value)
