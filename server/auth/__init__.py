"""Authentication: who is calling. What they may do is `server.authz`'s job."""

from server.auth.principal import Principal

__all__ = ["Principal"]
