"""Process-wide services, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from server.authz.authorizer import Authorizer
from server.authz.service import AccessAdminService
from server.clock import Clock
from server.customer.service import CustomerService
from server.privacy.service import PrivacyService
from server.vault import Vault
from server.vault.keyring import KeyProvider


@dataclass
class Services:
    vault: Vault
    authorizer: Authorizer
    customers: CustomerService
    clock: Clock
    access: AccessAdminService
    privacy: PrivacyService

    @classmethod
    def build(cls, keys: KeyProvider, clock: Clock | None = None) -> Services:
        vault = Vault(keys)
        authorizer = Authorizer()
        clock = clock or Clock()
        return cls(
            vault=vault,
            authorizer=authorizer,
            customers=CustomerService(vault),
            clock=clock,
            access=AccessAdminService(authorizer, clock),
            privacy=PrivacyService(vault),
        )
