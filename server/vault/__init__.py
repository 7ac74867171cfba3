"""The vault: the only place where sensitive values are sealed, revealed or masked."""

from server.vault.keyring import KeyProvider, LocalKeyring
from server.vault.sealed import Sealed
from server.vault.vault import DataKey, FieldRef, Vault

__all__ = ["DataKey", "FieldRef", "KeyProvider", "LocalKeyring", "Sealed", "Vault"]
