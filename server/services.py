"""Process-wide services, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from server.audit.service import AuditService
from server.authz.authorizer import Authorizer
from server.authz.service import AccessAdminService
from server.clock import Clock
from server.complaint.service import ComplaintService
from server.config import Settings
from server.customer.service import CustomerService
from server.interaction.service import InteractionService
from server.privacy.service import PrivacyService
from server.service_levels import ServiceLevels
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
    complaints: ComplaintService
    interactions: InteractionService
    audit: AuditService

    @classmethod
    def build(
        cls, keys: KeyProvider, clock: Clock | None = None, settings: Settings | None = None
    ) -> Services:
        vault = Vault(keys)
        authorizer = Authorizer()
        clock = clock or Clock()
        levels = ServiceLevels.from_settings(settings) if settings else ServiceLevels()
        return cls(
            vault=vault,
            authorizer=authorizer,
            customers=CustomerService(vault, clock=clock, review_months=levels.review_months),
            clock=clock,
            access=AccessAdminService(authorizer, clock),
            privacy=PrivacyService(vault),
            complaints=ComplaintService(vault, clock, levels),
            interactions=InteractionService(vault, clock, levels),
            audit=AuditService.build(keys),
        )

    def __setattr__(self, name: str, value: object) -> None:
        # One clock for all: `services.clock = FixedClock(...)` moves every
        # time-dependent service with it (deadlines, reviews), so tests control time.
        # Any domain service with a `clock` attribute follows.
        object.__setattr__(self, name, value)
        if name == "clock":
            for service in vars(self).values():
                if service is not value and hasattr(service, "clock"):
                    service.clock = value
