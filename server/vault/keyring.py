"""Key providers: where key-encryption keys, blind-index keys and signing keys come from.

`LocalKeyring` is a JSON file (mode 600) for dev and CI; a KMS provider implements the
same protocol. Keys are versioned; the newest version wraps, every kept version unwraps.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.errors import ConfigError, VaultError

KEY_BYTES = 32


class KeyProvider(Protocol):
    """What the vault needs from a key store. A KMS implementation wraps remotely."""

    def current_kek_version(self) -> int: ...

    def kek_versions(self) -> list[int]: ...

    def wrap_dek(self, dek: bytes, *, customer_id: str) -> tuple[int, bytes]: ...

    def unwrap_dek(self, version: int, wrapped: bytes, *, customer_id: str) -> bytes: ...

    def current_blind_index_version(self) -> int: ...

    def blind_index_key(self, version: int) -> bytes: ...

    def signing_key(self) -> tuple[int, bytes]: ...

    def signing_key_version(self, version: int) -> bytes: ...


class LocalKeyring:
    """A keyring file: {"kek": {version: key}, "blind_index": {...}, "signing": {...}}."""

    def __init__(self, path: Path, data: dict[str, dict[str, str]]) -> None:
        self.path = path
        self._keys: dict[str, dict[int, bytes]] = {
            kind: {int(v): base64.b64decode(k) for v, k in versions.items()}
            for kind, versions in data.items()
        }
        for kind in ("kek", "blind_index", "signing"):
            if not self._keys.get(kind):
                raise ConfigError(f"keyring {kind!r} has no key versions")
        self._keks = {v: AESGCM(k) for v, k in self._keys["kek"].items()}

    @classmethod
    def load(cls, path: Path, *, create: bool) -> LocalKeyring:
        """Load the keyring; in dev (`create`) make one the first time it is missing."""
        if not path.exists():
            if not create:
                raise ConfigError("CUSTOS_KEYRING: keyring file not found")
            cls._write(
                path, {kind: {"1": _new_key()} for kind in ("kek", "blind_index", "signing")}
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"CUSTOS_KEYRING: unreadable keyring ({type(exc).__name__})"
            ) from None
        return cls(path, data)

    @staticmethod
    def _write(path: Path, data: dict[str, dict[str, str]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)

    def add_version(self, kind: str) -> int:
        """Add a new newest version of a key kind and persist the keyring."""
        version = max(self._keys[kind]) + 1
        self._keys[kind][version] = base64.b64decode(_new_key())
        if kind == "kek":
            self._keks[version] = AESGCM(self._keys[kind][version])
        self._persist()
        return version

    def retire_version(self, kind: str, version: int) -> None:
        if version == max(self._keys[kind]):
            raise ConfigError("the newest key version cannot be retired")
        self._keys[kind].pop(version, None)
        self._keks.pop(version, None) if kind == "kek" else None
        self._persist()

    def _persist(self) -> None:
        data = {
            kind: {str(v): base64.b64encode(k).decode() for v, k in versions.items()}
            for kind, versions in self._keys.items()
        }
        self._write(self.path, data)

    def current_kek_version(self) -> int:
        return max(self._keks)

    def kek_versions(self) -> list[int]:
        return sorted(self._keks)

    def wrap_dek(self, dek: bytes, *, customer_id: str) -> tuple[int, bytes]:
        version = self.current_kek_version()
        nonce = os.urandom(12)
        aad = f"dek|{customer_id}|{version}".encode()
        return version, nonce + self._keks[version].encrypt(nonce, dek, aad)

    def unwrap_dek(self, version: int, wrapped: bytes, *, customer_id: str) -> bytes:
        kek = self._keks.get(version)
        if kek is None:
            raise VaultError("data key is wrapped by a retired key version")
        aad = f"dek|{customer_id}|{version}".encode()
        try:
            return kek.decrypt(wrapped[:12], wrapped[12:], aad)
        except InvalidTag:
            raise VaultError("data key does not unwrap for this customer") from None

    def current_blind_index_version(self) -> int:
        return max(self._keys["blind_index"])

    def blind_index_key(self, version: int) -> bytes:
        try:
            return self._keys["blind_index"][version]
        except KeyError:
            raise VaultError("blind-index key version is not in the keyring") from None

    def signing_key(self) -> tuple[int, bytes]:
        version = max(self._keys["signing"])
        return version, self._keys["signing"][version]

    def signing_key_version(self, version: int) -> bytes:
        return self._keys["signing"][version]

    def __repr__(self) -> str:
        return f"LocalKeyring(path={self.path.name!r}, keys=***)"


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
