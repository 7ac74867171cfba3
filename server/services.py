"""Process-wide services, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from server.analytics.service import AnalyticsConfig, AnalyticsService
from server.authz.authorizer import Authorizer
from server.clock import Clock
from server.customer.service import CustomerService
from server.vault import Vault
from server.vault.keyring import KeyProvider


@dataclass
class Services:
    vault: Vault
    authorizer: Authorizer
    customers: CustomerService
    clock: Clock
    analytics: AnalyticsService

    @classmethod
    def build(
        cls,
        keys: KeyProvider,
        clock: Clock | None = None,
        analytics: AnalyticsConfig | None = None,
    ) -> Services:
        vault = Vault(keys)
        return cls(
            vault=vault,
            authorizer=Authorizer(),
            customers=CustomerService(vault),
            clock=clock or Clock(),
            analytics=AnalyticsService(analytics),
        )
