"""Process-wide services, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.authz.authorizer import Authorizer
from server.campaign.service import CampaignService
from server.care.service import CareRules, CareService, parse_holidays
from server.clock import Clock
from server.config import Settings
from server.customer.service import CustomerService
from server.imports.service import ImportService
from server.loyalty.service import LoyaltyRules, LoyaltyService
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
    def build(
        cls, keys: KeyProvider, clock: Clock | None = None, settings: Settings | None = None
    ) -> Services:
        vault = Vault(keys)
        services = cls(
            vault=vault,
            authorizer=Authorizer(),
            customers=CustomerService(vault),
            clock=clock or Clock(),
        )
        if settings is not None:
            services.configure(settings)
        return services

    def configure(self, settings: Settings) -> None:
        """Business rules from settings (`CUSTOS_LOYALTY_*`, `CUSTOS_CARE_*`)."""
        self.loyalty.rules = LoyaltyRules(
            points_per_currency_unit=settings.loyalty_points_per_unit,
            referral_bonus=settings.loyalty_referral_bonus,
            level_basis=settings.loyalty_level_basis,
            thresholds=LoyaltyRules.parse_levels(settings.loyalty_levels),
        )
        self.care.rules = CareRules(
            new_customer_days=settings.care_new_customer_days,
            new_customer_cadence_days=settings.care_new_cadence_days,
            established_cadence_days=settings.care_established_cadence_days,
            holidays=parse_holidays(settings.care_holidays),
        )
