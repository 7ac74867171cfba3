"""Former home of key rotation, now `server.keys.service` (a service: it owns transactions
and writes audit entries, so it sits above the vault). Kept only for the CLI's imports
until the CLI moves to `server.keys.service`; then delete this module and its
`ignore_imports` entries in pyproject.toml."""

from server.keys.service import BLIND_INDEX, KEK, KeyRotationService, RotationReport

__all__ = ["BLIND_INDEX", "KEK", "KeyRotationService", "RotationReport"]
