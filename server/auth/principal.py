"""The authenticated caller, carried through the request."""

from __future__ import annotations

import enum
import json
import unicodedata
import uuid
from dataclasses import dataclass, field

PURPOSES = ("support", "sales", "marketing", "analytics", "compliance")
# The role of whoever runs `custos` commands on the server's host. It counts only for a
# principal of that kind: a token or API key claiming it gets nothing from it.
CLI_OPERATOR_ROLE = "cli_operator"
MAX_SUBJECT_LENGTH = 128
# The colon separates a kind from a name in policy subjects (`user:ann`, `apikey:<id>`),
# the comma separates the fields of a rule: a person's subject may hold neither.
RESERVED_SUBJECT_CHARACTERS = frozenset(":,")


class PrincipalKind(enum.StrEnum):
    USER = "user"
    API_KEY = "API key"
    CLI_OPERATOR = "CLI operator"


# How each kind is written in policy subjects and in the authorizer's nodes.
KIND_TAGS: dict[PrincipalKind, str] = {
    PrincipalKind.USER: "user",
    PrincipalKind.API_KEY: "apikey",
    PrincipalKind.CLI_OPERATOR: "cli",
}


def subject_name_problem(subject: object) -> str | None:
    """Why `subject` cannot name a person (a token's `sub`, a role assignment), or None.

    A person's subject is 1-128 characters of visible text: no blank, no whitespace, no
    control or format character (NUL, bidi overrides), no `:` or `,`. So no token can
    spell another kind's subject (`apikey:<id>`, `cli:<user>`), a rule's subject or a
    line that misleads whoever reads the log.
    """
    if not isinstance(subject, str):
        return "the subject must be a string"
    if not subject:
        return "the subject is empty"
    if len(subject) > MAX_SUBJECT_LENGTH:
        return f"the subject is longer than {MAX_SUBJECT_LENGTH} characters"
    for char in subject:
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            return "the subject holds a space, control or invisible character"
        if char in RESERVED_SUBJECT_CHARACTERS:
            return "the subject holds a reserved character (: or ,)"
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: tuple[str, ...]
    team: str | None = None
    api_key_id: uuid.UUID | None = None
    purpose: str | None = None
    client_addr: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    kind: PrincipalKind = PrincipalKind.USER

    @property
    def node(self) -> str:
        """This one caller as a policy subject, built from its kind, never parsed from
        its subject: `user:<subject>`, `apikey:<key id>` or `cli:<subject>`."""
        if self.kind is PrincipalKind.API_KEY:
            if self.api_key_id is None:
                raise ValueError("an API key principal carries its key id")
            return f"apikey:{self.api_key_id}"
        return f"{KIND_TAGS[self.kind]}:{self.subject}"

    @property
    def identity(self) -> str:
        """Kind, subject and roles in one unambiguous string (JSON): the authorizer's
        key for this principal, so no two kinds or role sets can ever share one."""
        return json.dumps([self.kind.value, self.node, sorted(self.role_set)])

    @property
    def role_set(self) -> frozenset[str]:
        """The roles the policy decides on."""
        roles = frozenset(self.roles)
        if self.kind is not PrincipalKind.CLI_OPERATOR:
            roles -= {CLI_OPERATOR_ROLE}
        return roles
