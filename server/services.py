"""Process-wide services, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from server.analytics.service import AnalyticsConfig, AnalyticsService
from server.audit.service import AuditService
from server.authz.authorizer import Authorizer
from server.authz.service import AccessAdminService
from server.business_calendar import BusinessCalendar
from server.campaign.service import CampaignService
from server.care.service import CareRules, CareService, parse_holidays
from server.clock import Clock
from server.complaint.service import ComplaintService
from server.config import Settings
from server.contact.service import ContactPointService
from server.customer.service import CustomerService
from server.imports.service import ImportService
from server.interaction.service import InteractionService
from server.loyalty.service import LoyaltyRules, LoyaltyService
from server.note.service import NoteService
from server.order.service import OrderService
from server.privacy.service import PrivacyService
from server.records.service import RecordService
from server.service_levels import ServiceLevels, business_calendar
from server.task.retention import RetentionService, parse_playbook
from server.task.service import TaskService
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
    analytics: AnalyticsService
    tasks: TaskService
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    loyalty: LoyaltyService = field(init=False)
    orders: OrderService = field(init=False)
    campaigns: CampaignService = field(init=False)
    retention: RetentionService = field(init=False)
    care: CareService = field(init=False)
    imports: ImportService = field(init=False)
    records: RecordService = field(default_factory=RecordService)
    contacts: ContactPointService = field(init=False)
    notes: NoteService = field(init=False)

    def __post_init__(self) -> None:
        # These services read the time through this object, so swapping `services.clock`
        # for a FixedClock moves them too.
        def now() -> datetime:
            return self.clock.now()

        self.loyalty = LoyaltyService(now)
        self.orders = OrderService(now, self.loyalty)
        self.campaigns = CampaignService(now)
        self.care = CareService(self.vault, now, self.tasks, self.calendar)
        self.retention = RetentionService(self.analytics, self.tasks, self.calendar)
        # A completed complaint follow-up task records the complaint's follow-up.
        self.complaints.tasks = self.tasks
        self.tasks.on_done["complaint"] = self.complaints.follow_up_from_task
        self.contacts = ContactPointService(self.vault, clock=self.clock)
        self.notes = NoteService(self.vault, clock=self.clock)
        self.imports = ImportService(
            self.customers, self.vault, now, contacts=self.contacts, notes=self.notes
        )

    @classmethod
    def build(
        cls, keys: KeyProvider, clock: Clock | None = None, settings: Settings | None = None
    ) -> Services:
        vault = Vault(keys)
        authorizer = Authorizer()
        clock = clock or Clock()
        calendar = business_calendar(settings) if settings else BusinessCalendar()
        levels = ServiceLevels.from_settings(settings, calendar) if settings else ServiceLevels()
        services = cls(
            vault=vault,
            authorizer=authorizer,
            customers=CustomerService(vault, clock=clock, review_months=levels.review_months),
            clock=clock,
            access=AccessAdminService(authorizer, clock),
            privacy=PrivacyService(vault),
            complaints=ComplaintService(vault, clock, levels),
            interactions=InteractionService(vault, clock, levels),
            audit=AuditService.build(keys),
            analytics=AnalyticsService(
                AnalyticsConfig.from_settings(settings) if settings else None
            ),
            tasks=TaskService(vault, clock),
            calendar=calendar,
        )
        if settings is not None:
            services.configure(settings)
        return services

    def configure(self, settings: Settings) -> None:
        """Business rules from settings (`CUSTOS_LOYALTY_*`, `CUSTOS_CARE_*`,
        `CUSTOS_AUDIT_*`)."""
        self.audit.configure(retention_days=settings.audit_retention_days)
        self.loyalty.rules = LoyaltyRules(
            points_per_currency_unit=settings.loyalty_points_per_unit,
            referral_bonus=settings.loyalty_referral_bonus,
            level_basis=settings.loyalty_level_basis,
            thresholds=LoyaltyRules.parse_levels(settings.loyalty_levels),
        )
        self.retention.playbook = parse_playbook(settings.retention_playbook)
        self.retention.won_back_days = settings.retention_won_back_days
        self.campaigns.conversion_days = settings.campaign_conversion_days
        holidays, lunar_holidays = parse_holidays(settings.care_holidays)
        self.care.rules = CareRules(
            new_customer_days=settings.care_new_customer_days,
            new_customer_cadence_days=settings.care_new_cadence_days,
            established_cadence_days=settings.care_established_cadence_days,
            holidays=holidays,
            lunar_holidays=lunar_holidays,
            at_risk_repeat_days=settings.care_at_risk_repeat_days,
        )

    def __setattr__(self, name: str, value: object) -> None:
        # One clock for all: `services.clock = FixedClock(...)` moves every service
        # holding a `clock` attribute (deadlines, reviews, policy admin) with it.
        object.__setattr__(self, name, value)
        if name == "clock":
            for service in vars(self).values():
                if service is not value and hasattr(service, "clock"):
                    service.clock = value
