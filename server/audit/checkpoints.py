"""Signed checkpoints: a keyed statement "the ledger at position N had hash H".

Blocks replaced them as the ledger's signed statements; they remain for what only a
keyed statement can say: a prune boundary ("entries of blocks up to B were deleted on
purpose", `detail.block`), and the checkpoints of the pre-block chain, which `verify`
still honours. Signatures are made by the vault (`server.vault.signing`: HMAC-SHA256
under the keyring's versioned `signing` key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.audit.chain import canonical
from server.vault import signing
from server.vault.signing import SigningKeys


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
