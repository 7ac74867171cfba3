"""The whole domain model. Importing this package registers every table on `Base.metadata`."""

from server.data.models.access import ApiKey, PolicyRule, PolicyVersion, RoleAssignment
from server.data.models.audit import (
    AuditAccess,
    AuditBlock,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditRecordKey,
    AuditSealer,
)
from server.data.models.campaign import Campaign, CampaignRecipient
from server.data.models.complaint import Complaint, ComplaintEvent
from server.data.models.contact_point import ContactPoint
from server.data.models.customer import (
    Consent,
    Customer,
    CustomerKey,
    DuplicateFlag,
    KeyRotation,
)
from server.data.models.customer_note import CustomerNote
from server.data.models.interaction import Interaction
from server.data.models.loyalty import LoyaltyEntry, Referral
from server.data.models.name_token import CustomerNameToken
from server.data.models.operations import ReadinessProbe, TrustedDocument
from server.data.models.order import Order, OrderItem, OrderStatusEvent, Product
from server.data.models.security import SecurityEvent
from server.data.models.task import Task
from server.data.models.user import User, UserSession

__all__ = [
    "ApiKey",
    "AuditAccess",
    "AuditBlock",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditRecordKey",
    "AuditSealer",
    "Campaign",
    "CampaignRecipient",
    "Complaint",
    "ComplaintEvent",
    "Consent",
    "ContactPoint",
    "Customer",
    "CustomerKey",
    "CustomerNameToken",
    "CustomerNote",
    "DuplicateFlag",
    "Interaction",
    "KeyRotation",
    "LoyaltyEntry",
    "Order",
    "OrderItem",
    "OrderStatusEvent",
    "PolicyRule",
    "PolicyVersion",
    "Product",
    "ReadinessProbe",
    "Referral",
    "RoleAssignment",
    "SecurityEvent",
    "Task",
    "TrustedDocument",
    "User",
    "UserSession",
]
