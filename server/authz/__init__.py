"""Authorization: casbin policy decisions, made once per (principal, object, action)."""

from server.authz.authorizer import AccessDecisions, Authorizer, FieldMode, RowScope

__all__ = ["AccessDecisions", "Authorizer", "FieldMode", "RowScope"]
