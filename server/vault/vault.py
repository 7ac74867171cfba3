"""Envelope encryption of field values, bound to where they live.

Each customer has a data key (DEK) wrapped by a versioned key-encryption key. A field
value is sealed with AES-256-GCM under its customer's DEK with associated data
(table, column, row id, DEK version), so a ciphertext moved to another row or column
fails to open instead of showing the wrong value.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import struct
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.errors import VaultError
from server.vault.keyring import KeyProvider
from server.vault.names import FULL, SURNAME, WORD, name_parts, query_parts
from server.vault.normalise import point_search_key

FORMAT_V1 = 1
HEADER = struct.Struct(">BH")  # format, DEK version
NONCE_BYTES = 12
_BODY_START = HEADER.size + NONCE_BYTES  # 3-byte header, then the nonce
_MIN_CIPHERTEXT = _BODY_START + 16
DEK_VERSION = 1

# Blind-index width. Rule: bits = floor(log2(N / k)) for a target population N and at
# least k candidates per index value, so an index value never singles out a person.
# N = 1,000,000 customers and k = 8 give 16 bits (about 15 candidates per value at N);
# every candidate is confirmed by decryption.
BLIND_INDEX_BITS = 16
# Name tokens, by part kind (server/vault/names.py): bits = floor(log2(min(N, D) / k)),
# the same rule with N the tokens of the kind and D its distinct parts in use, so each
# value is shared by at least k = 8 customers *and* 8 distinct parts (else counting
# tokens reads a surname off its value). Whole names: N = D = 1,000,000, 16 bits. Words
# of Latin-script names: D ~ 100,000, 13 bits. Chinese surnames: D ~ 6,000 in use, 9
# bits. README, "Name search", has the reasoning and the false-positive rates; every
# candidate is confirmed by decryption.
NAME_TOKEN_BITS: dict[str, int] = {FULL: 16, WORD: 13, SURNAME: 9}


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a sealed value lives: its ciphertext is bound to exactly this place."""

    table: str
    column: str
    row_id: uuid.UUID

    def associated_data(self, dek_version: int) -> bytes:
        return f"{self.table}|{self.column}|{self.row_id}|{dek_version}".encode()


@dataclass(frozen=True, slots=True)
class DataKey:
    """A customer's unwrapped data key, ready to seal and open."""

    customer_id: uuid.UUID
    kek_version: int
    wrapped: bytes
    cipher: AESGCM
    # The customer id as text, computed once: it is in the associated data of every
    # value on the customer's own row, and str(UUID) is not free at 3,000 reveals.
    id_text: str

    def __repr__(self) -> str:
        return f"DataKey(customer_id={self.customer_id}, kek_version={self.kek_version}, ***)"


class Vault:
    """Seal and reveal field values; compute blind indexes. Holds a bounded DEK cache."""

    def __init__(
        self,
        keys: KeyProvider,
        *,
        cache_size: int = 100_000,
        blind_index_bits: int = BLIND_INDEX_BITS,
        name_token_bits: dict[str, int] | None = None,
    ) -> None:
        self.keys = keys
        # Tests narrow the width to force collisions; production keeps the planned width.
        self.blind_index_bits = blind_index_bits
        self.name_token_bits = name_token_bits or NAME_TOKEN_BITS
        # Keyed by the wrapped bytes (unique per wrap): a rewrap or a shred misses.
        self._cache: OrderedDict[bytes, DataKey] = OrderedDict()
        self._cache_size = cache_size

    def new_data_key(self, customer_id: uuid.UUID) -> DataKey:
        dek = AESGCM.generate_key(bit_length=256)
        version, wrapped = self.keys.wrap_dek(dek, customer_id=str(customer_id))
        key = DataKey(customer_id, version, wrapped, AESGCM(dek), str(customer_id))
        self._remember(key)
        return key

    async def create_data_key(self, customer_id: uuid.UUID) -> DataKey:
        """`new_data_key` for the request path: the key provider's store is synchronous
        file I/O with a disk sync per new secret, so it runs on a worker thread, not on the
        event loop every other request shares. (Not inside the provider's `bulk()`,
        whose batch belongs to the thread that opened it: use `new_data_key` there.)"""
        dek = AESGCM.generate_key(bit_length=256)
        version, wrapped = await asyncio.to_thread(
            self.keys.wrap_dek, dek, customer_id=str(customer_id)
        )
        key = DataKey(customer_id, version, wrapped, AESGCM(dek), str(customer_id))
        self._remember(key)
        return key

    async def open_data_keys(
        self, stored: Iterable[tuple[uuid.UUID, int | None, bytes | None]]
    ) -> None:
        """Open the stored data keys not yet cached on a worker thread (the provider's
        store reads a file), so the reveal loop that follows finds them all cached. A key
        that does not open is left for that loop to report, as it would have."""
        missing = {
            wrapped: (customer_id, version)
            for customer_id, version, wrapped in stored
            if wrapped is not None and version is not None and wrapped not in self._cache
        }
        if missing:
            for key in await asyncio.to_thread(self._unwrap_many, missing):
                self._remember(key)

    def _unwrap_many(self, missing: dict[bytes, tuple[uuid.UUID, int]]) -> list[DataKey]:
        opened = []
        for wrapped, (customer_id, version) in missing.items():
            try:
                dek = self.keys.unwrap_dek(version, wrapped, customer_id=str(customer_id))
            except VaultError:
                continue
            opened.append(DataKey(customer_id, version, wrapped, AESGCM(dek), str(customer_id)))
        return opened

    def open_data_key(
        self, customer_id: uuid.UUID, kek_version: int | None, wrapped: bytes | None
    ) -> DataKey:
        """Unwrap a stored DEK (cached by its wrapped bytes, so a rewrap or shred misses)."""
        if wrapped is None or kek_version is None:
            raise VaultError("this customer's data has been erased")
        cached = self._cache.get(wrapped)
        if cached is not None and cached.customer_id == customer_id:
            self._cache.move_to_end(wrapped)
            return cached
        dek = self.keys.unwrap_dek(kek_version, wrapped, customer_id=str(customer_id))
        key = DataKey(customer_id, kek_version, wrapped, AESGCM(dek), str(customer_id))
        self._remember(key)
        return key

    def rewrap(self, key: DataKey) -> DataKey:
        """Wrap an open DEK under the newest KEK version (key rotation)."""
        dek = self.keys.unwrap_dek(key.kek_version, key.wrapped, customer_id=str(key.customer_id))
        version, wrapped = self.keys.wrap_dek(dek, customer_id=str(key.customer_id))
        return DataKey(key.customer_id, version, wrapped, key.cipher, key.id_text)

    async def wrap_secret(self, owner: str, secret: bytes) -> tuple[int, bytes]:
        """A small secret that belongs to no customer (an account's TOTP secret), wrapped
        under the newest KEK and bound to `owner` as a data key is to its customer: the
        KEK version and the wrapped bytes. The key provider's store is file I/O with a
        disk sync, so this runs off the event loop."""
        return await asyncio.to_thread(self.keys.wrap_dek, secret, customer_id=owner)

    async def unwrap_secret(self, owner: str, version: int, wrapped: bytes) -> bytes:
        """A secret `wrap_secret` wrapped for `owner` (VaultError when it does not open)."""
        return await asyncio.to_thread(self.keys.unwrap_dek, version, wrapped, customer_id=owner)

    def current_kek_version(self) -> int:
        return self.keys.current_kek_version()

    def shred(self, customer_id: uuid.UUID) -> bool:
        """Crypto-shred: destroy the customer's secret at the key provider, drop cached keys."""
        self.forget(customer_id)
        return self.keys.shred_customer(customer_id=str(customer_id))

    def forget(self, customer_id: uuid.UUID) -> None:
        for cache_key in [k for k, v in self._cache.items() if v.customer_id == customer_id]:
            del self._cache[cache_key]

    def forget_all(self) -> None:
        self._cache.clear()

    def _remember(self, key: DataKey) -> None:
        self._cache[key.wrapped] = key
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def seal(self, key: DataKey, ref: FieldRef, plaintext: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        body = key.cipher.encrypt(nonce, plaintext.encode(), ref.associated_data(DEK_VERSION))
        return HEADER.pack(FORMAT_V1, DEK_VERSION) + nonce + body

    def reveal(self, key: DataKey, ref: FieldRef, ciphertext: bytes) -> str:
        """Open a sealed value; fails loudly if it was moved, altered or its key shredded."""
        row_text = key.id_text if ref.row_id == key.customer_id else str(ref.row_id)
        return self.reveal_at(key, ref.table, ref.column, row_text, ciphertext)

    def reveal_at(
        self, key: DataKey, table: str, column: str, row_text: str, ciphertext: bytes
    ) -> str:
        """`reveal` for hot loops: the row id comes as text (`key.id_text` on a customer row).

        Same checks, same associated data; it only skips building a `FieldRef` and
        formatting the UUID once per field.
        """
        if len(ciphertext) < _MIN_CIPHERTEXT or ciphertext[0] != FORMAT_V1:
            raise VaultError(f"{table}.{column} holds no valid ciphertext")
        dek_version = (ciphertext[1] << 8) | ciphertext[2]
        aad = f"{table}|{column}|{row_text}|{dek_version}".encode()
        try:
            plain = key.cipher.decrypt(
                ciphertext[_BODY_START - NONCE_BYTES : _BODY_START], ciphertext[_BODY_START:], aad
            )
        except InvalidTag:
            raise VaultError(
                f"{table}.{column} of {row_text} does not decrypt here (moved, altered or erased)"
            ) from None
        return plain.decode()

    def blind_index(self, field: str, normalised: str, version: int | None = None) -> int:
        """Truncated keyed HMAC of a normalised value: many people share each index value."""
        key = self.keys.blind_index_key(version or self.keys.current_blind_index_version())
        digest = hmac.new(key, f"{field}|{normalised}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") >> (32 - self.blind_index_bits)

    def blind_indexes(self, field: str, normalised: str) -> dict[int, int]:
        """The index under every kept key version, so lookups work during a rotation."""
        return {
            version: self.blind_index(field, normalised, version)
            for version in self.keys.blind_index_versions()
        }

    def contact_point_index(self, stored: str, version: int) -> int:
        """The blind index of a contact point's stored value (`point_search_key`): numbers
        and WeChat IDs each in their own domain, apart from the customer's own columns, so
        equal indexes link only points of one kind."""
        kind, normalised = point_search_key(stored)
        return self.blind_index(f"contact_point.{kind}", normalised, version)

    def contact_point_query(self, kind: str, normalised: str) -> dict[int, int]:
        """The index a contact-point lookup asks for, under every kept key version."""
        return self.blind_indexes(f"contact_point.{kind}", normalised)

    def name_token(self, kind: str, part: str, version: int) -> int:
        """Truncated keyed HMAC of one part of a name, under the blind-index key."""
        key = self.keys.blind_index_key(version)
        digest = hmac.new(key, f"name.{kind}|{part}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") >> (32 - self.name_token_bits[kind])

    def name_tokens(self, name: str, version: int | None = None) -> set[tuple[str, int]]:
        """The (kind, token) pairs a stored name is found by, under one key version."""
        version = version or self.keys.current_blind_index_version()
        return {(kind, self.name_token(kind, part, version)) for kind, part in name_parts(name)}

    def name_query(self, query: str) -> dict[int, set[tuple[str, int]]]:
        """The tokens a name search asks for, under every kept key version (a rotation
        leaves rows on either), by version."""
        parts = query_parts(query)
        return {
            version: {(kind, self.name_token(kind, part, version)) for kind, part in parts}
            for version in self.keys.blind_index_versions()
        }

    def __repr__(self) -> str:
        return "Vault(***)"
