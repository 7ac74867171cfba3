"""Authorization: casbin policy decisions, made once per (principal, object, action),
asked through the request's `Gate`, which audits every denial."""

from server.authz.authorizer import AccessDecisions, Authorizer, FieldMode, RowScope
from server.authz.gate import Gate

__all__ = ["AccessDecisions", "Authorizer", "FieldMode", "Gate", "RowScope"]
