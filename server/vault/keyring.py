"""Key providers: where key-encryption keys, blind-index keys and signing keys come from.

`LocalKeyring` is a JSON file (mode 600) for dev and CI; a KMS provider implements the
same protocol. Keys are versioned; the newest version wraps, every kept version unwraps.

Crypto-shredding: a customer's DEK is wrapped under a key derived from the KEK AND a
per-customer shred secret that the provider holds outside the database (the local
provider keeps them in a separate SQLite key store next to the keyring; a KMS keeps one
key per customer). `shred_customer` destroys the secret, so the wrapped DEK stops
opening everywhere, including in database copies taken before the erasure.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
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

    def blind_index_versions(self) -> list[int]: ...

    def blind_index_key(self, version: int) -> bytes: ...

    def signing_key(self) -> tuple[int, bytes]: ...

    def signing_key_version(self, version: int) -> bytes: ...

    def add_version(self, kind: str) -> int:
        """Add a newest version of `kek` or `blind_index` (rotation)."""
        ...

    def retire_version(self, kind: str, version: int) -> None: ...

    def shred_customer(self, *, customer_id: str) -> bool:
        """Destroy the customer's shred secret; True if one existed."""
        ...

    def bulk(self) -> contextlib.AbstractContextManager[None]:
        """A scope in which many new customers' key material is stored at once."""
        ...


class CustomerSecretStore:
    """Per-customer shred secrets in their own SQLite file, never in the main database.

    `secure_delete` overwrites a deleted secret's bytes in the file and a checkpoint
    empties the write-ahead log, so a removed secret is gone from this file too (copies
    of the file itself are the operator's to control).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._bulk_depth = 0

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Create many secrets with one commit (one fsync) instead of one each.

        Callers commit their database transaction only after leaving this block, so a
        stored data key never refers to a secret that was not yet durable.
        """
        with self._lock:
            self._bulk_depth += 1
            try:
                yield
            finally:
                self._bulk_depth -= 1
                if self._bulk_depth == 0 and self._conn is not None:
                    self._conn.commit()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA secure_delete = ON")
            # WAL keeps one fsync per new secret; FULL because a lost secret is lost data.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS shred_secrets "
                "(customer_id TEXT PRIMARY KEY, secret BLOB NOT NULL)"
            )
            conn.commit()
            self._conn = conn
        return self._conn

    def get_or_create(self, customer_id: str) -> bytes:
        with self._lock:
            conn = self._connect()
            conn.execute(
                "INSERT OR IGNORE INTO shred_secrets (customer_id, secret) VALUES (?, ?)",
                (customer_id, secrets.token_bytes(KEY_BYTES)),
            )
            if self._bulk_depth == 0:
                conn.commit()
            row = conn.execute(
                "SELECT secret FROM shred_secrets WHERE customer_id = ?", (customer_id,)
            ).fetchone()
        return bytes(row[0])

    def get(self, customer_id: str) -> bytes | None:
        with self._lock:
            row = (
                self._connect()
                .execute("SELECT secret FROM shred_secrets WHERE customer_id = ?", (customer_id,))
                .fetchone()
            )
        return bytes(row[0]) if row else None

    def destroy(self, customer_id: str) -> bool:
        with self._lock:
            conn = self._connect()
            deleted = conn.execute(
                "DELETE FROM shred_secrets WHERE customer_id = ?", (customer_id,)
            ).rowcount
            conn.commit()
            # Move the zeroed page into the main file and empty the log, so no frame
            # holding the old secret stays behind in the WAL.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted > 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def shred_store_path(keyring_path: Path) -> Path:
    return keyring_path.with_name(keyring_path.stem + ".shred.db")


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
        self.shred_secrets = CustomerSecretStore(shred_store_path(path))
        self._loaded_mtime = self._mtime()
        self._checked_at = time.monotonic()

    # Another process (`custos keys rotate`) may add versions to the file while a server
    # runs: the file is re-read when it changed, checked at most once per second.
    RELOAD_INTERVAL = 1.0

    def _mtime(self) -> int:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < self.RELOAD_INTERVAL:
            return
        self._checked_at = now
        mtime = self._mtime()
        if mtime == self._loaded_mtime:
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # keep the keys we have; the next check tries again
        self._keys = {
            kind: {int(v): base64.b64decode(k) for v, k in versions.items()}
            for kind, versions in data.items()
        }
        self._keks = {v: AESGCM(k) for v, k in self._keys["kek"].items()}
        self._loaded_mtime = mtime

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
        """Replace the keyring file durably: the new content is on disk before it takes
        the name, and the rename itself is on disk before this returns. A crash at any
        point leaves the old keyring or the new one, whole, never a new version that a
        rewrapped key already needs but the file lost."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def add_version(self, kind: str) -> int:
        """Add a new newest version of a key kind and persist the keyring."""
        self.refresh(force=True)
        version = max(self._keys[kind]) + 1
        self._keys[kind][version] = base64.b64decode(_new_key())
        if kind == "kek":
            self._keks[version] = AESGCM(self._keys[kind][version])
        self._persist()
        return version

    def retire_version(self, kind: str, version: int) -> None:
        self.refresh(force=True)
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
        self._loaded_mtime = self._mtime()

    def current_kek_version(self) -> int:
        self.refresh()
        return max(self._keks)

    def kek_versions(self) -> list[int]:
        self.refresh()
        return sorted(self._keks)

    def _wrapping_key(self, version: int, customer_id: str, secret: bytes) -> AESGCM:
        # KEK and shred secret both go in: without either, the DEK does not unwrap.
        kek = self._keys["kek"][version]
        derived = hmac.new(kek, b"dek-wrap|" + customer_id.encode() + b"|" + secret, "sha256")
        return AESGCM(derived.digest())

    def wrap_dek(self, dek: bytes, *, customer_id: str) -> tuple[int, bytes]:
        version = self.current_kek_version()
        secret = self.shred_secrets.get_or_create(_canonical(customer_id))
        nonce = os.urandom(12)
        aad = f"dek|{customer_id}|{version}".encode()
        cipher = self._wrapping_key(version, customer_id, secret)
        return version, nonce + cipher.encrypt(nonce, dek, aad)

    def unwrap_dek(self, version: int, wrapped: bytes, *, customer_id: str) -> bytes:
        if version not in self._keks:
            self.refresh(force=True)
        if version not in self._keks:
            raise VaultError("data key is wrapped by a retired key version")
        secret = self.shred_secrets.get(_canonical(customer_id))
        if secret is None:
            raise VaultError("this customer's data has been erased", code="ERASED")
        if len(wrapped) < 12 + 16:
            # Shorter than a nonce and a tag: a damaged value, refused as a wrong one is
            # (AES-GCM raises ValueError, not InvalidTag, for a short nonce).
            raise VaultError("data key does not unwrap for this customer")
        aad = f"dek|{customer_id}|{version}".encode()
        try:
            return self._wrapping_key(version, customer_id, secret).decrypt(
                wrapped[:12], wrapped[12:], aad
            )
        except InvalidTag:
            raise VaultError("data key does not unwrap for this customer") from None

    def shred_customer(self, *, customer_id: str) -> bool:
        return self.shred_secrets.destroy(_canonical(customer_id))

    def bulk(self) -> contextlib.AbstractContextManager[None]:
        return self.shred_secrets.bulk()

    def blind_index_versions(self) -> list[int]:
        self.refresh()
        return sorted(self._keys["blind_index"])

    def current_blind_index_version(self) -> int:
        self.refresh()
        return max(self._keys["blind_index"])

    def blind_index_key(self, version: int) -> bytes:
        if version not in self._keys["blind_index"]:
            self.refresh(force=True)
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


def _canonical(customer_id: str) -> str:
    try:
        return str(uuid.UUID(customer_id))
    except ValueError:
        return customer_id


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
