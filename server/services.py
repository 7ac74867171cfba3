"""Process-wide services, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.authz.authorizer import Authorizer
from server.campaign.service import CampaignService
from server.care.service import CareService
from server.clock import Clock
from server.customer.service import CustomerService
from server.imports.service import ImportService
from server.loyalty.service import LoyaltyService
from server.order.service import OrderService
from server.vault import Vault
from server.vault.keyring import KeyProvider


@dataclass
class Services:
    vault: Vault
    authorizer: Authorizer
    customers: CustomerService
    clock: Clock
    loyalty: LoyaltyService = field(init=False)
    orders: OrderService = field(init=False)
    campaigns: CampaignService = field(init=False)
    care: CareService = field(init=False)
    imports: ImportService = field(init=False)

    def __post_init__(self) -> None:
        # Time-dependent services read the clock through this object, so a test that
        # swaps `services.clock` for a FixedClock moves them all.
        def now() -> datetime:
            return self.clock.now()

        self.loyalty = LoyaltyService(now)
        self.orders = OrderService(now, self.loyalty)
        self.campaigns = CampaignService(now)
        self.care = CareService(self.vault, now)
        self.imports = ImportService(self.customers, self.vault, now)

    @classmethod
    def build(cls, keys: KeyProvider, clock: Clock | None = None) -> Services:
        vault = Vault(keys)
        return cls(
            vault=vault,
            authorizer=Authorizer(),
            customers=CustomerService(vault),
            clock=clock or Clock(),
        )
