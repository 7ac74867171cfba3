"""The audit trail: one hash-chained event per operation, committed with its data."""

from server.audit.recorder import AuditRecorder

__all__ = ["AuditRecorder"]
