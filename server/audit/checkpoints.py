"""Signed checkpoints: a keyed statement "the chain tip at seq N had hash H".

Signatures are made by the vault (`server.vault.signing`: HMAC-SHA256 under the keyring's
versioned `signing` key, so old checkpoints stay verifiable after a new version is added).
A verifier holding the key can start from a checkpoint instead of the genesis, which is
what makes pruning safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.audit.chain import canonical
from server.vault import signing
from server.vault.signing import SigningKeys

# Periodic checkpoints are written inside the append that reaches a multiple of this.
DEFAULT_CHECKPOINT_EVERY = 1000


def _aware_iso(value: datetime) -> str:
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def checkpoint_content(
    seq: int, chain_hash: str, created_at: datetime, key_version: int, detail: dict[str, Any]
) -> bytes:
    return canonical(
        {
            "seq": seq,
            "hash": chain_hash,
            "created_at": _aware_iso(created_at),
            "key_version": key_version,
            "detail": detail,
        }
    )


@dataclass(frozen=True)
class CheckpointSigner:
    keys: SigningKeys = field(repr=False)
    every: int = DEFAULT_CHECKPOINT_EVERY

    def sign(
        self, seq: int, chain_hash: str, created_at: datetime, detail: dict[str, Any]
    ) -> tuple[int, bytes]:
        return signing.sign(
            self.keys,
            lambda version: checkpoint_content(seq, chain_hash, created_at, version, detail),
        )

    def is_valid(
        self,
        seq: int,
        chain_hash: str,
        created_at: datetime,
        key_version: int,
        detail: dict[str, Any],
        signature: bytes,
    ) -> bool:
        content = checkpoint_content(seq, chain_hash, created_at, key_version, detail)
        return signing.signature_valid(self.keys, key_version, content, signature)

    def is_due(self, seq: int) -> bool:
        return self.every > 0 and seq % self.every == 0
