"""Cost of revealing 3 sealed fields on 1,000 customers against 3,000 bare AES-GCM decryptions.

Run: `python -m bench.vault_reveal [--customers N] [--rounds R]`. Prints the best of R
rounds for each path and the ratio to the baseline (target: at most 1.5x):

- baseline: 3 x N `AESGCM.decrypt` calls on the same ciphertexts, keys already built;
- vault (warm): `open_data_key` (bounded-cache hit) + 3 `reveal` per customer — the
  steady state of a serving process;
- service (warm): the customer service's reveal loop as a list query runs it (field
  modes decided once, views built, audit bookkeeping);
- vault (cold): every DEK unwrapped first (KEK + shred secret from the key store), as
  after a restart; reported, not held to the target.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.auth.principal import Principal
from server.authz.authorizer import Authorizer, read_policy_file
from server.caller import caller_for
from server.customer.service import CustomerService, NewCustomer
from server.vault import LocalKeyring, Vault
from server.vault.vault import HEADER, NONCE_BYTES, FieldRef

FIELDS = ("name", "phone", "email")


class Row(NamedTuple):
    id: Any
    kek_version: int
    wrapped_dek: bytes
    name: bytes
    phone: bytes
    email: bytes


def _best(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        keys = LocalKeyring.load(Path(tmp) / "keyring.json", create=True)
        vault = Vault(keys)
        customers = CustomerService(vault)
        rows: list[Row] = []
        bare: list[tuple[AESGCM, bytes, bytes, bytes]] = []
        for n in range(args.customers):
            sealed = customers.seal_new(
                NewCustomer(name=f"Customer {n}", phone=f"139{n:08d}", email=f"c{n}@example.com"),
                owner_id="m-1",
                team="east",
            )
            c = sealed.customer
            rows.append(
                Row(
                    c.id,
                    sealed.key.kek_version,
                    sealed.key.wrapped_dek or b"",
                    c.name,
                    c.phone or b"",
                    c.email or b"",
                )
            )
            for field in FIELDS:
                ciphertext: bytes = getattr(c, field)
                nonce = ciphertext[HEADER.size : HEADER.size + NONCE_BYTES]
                aad = FieldRef("customers", field, c.id).associated_data(1)
                bare.append(
                    (sealed.data_key.cipher, nonce, ciphertext[HEADER.size + NONCE_BYTES :], aad)
                )

        def baseline() -> None:
            for cipher, nonce, body, aad in bare:
                cipher.decrypt(nonce, body, aad)

        def vault_path() -> None:
            for row in rows:
                key = vault.open_data_key(row.id, row.kek_version, row.wrapped_dek)
                row_text = key.id_text
                vault.reveal_at(key, "customers", "name", row_text, row.name)
                vault.reveal_at(key, "customers", "phone", row_text, row.phone)
                vault.reveal_at(key, "customers", "email", row_text, row.email)

        authorizer = Authorizer()
        authorizer._load(read_policy_file())
        principal = Principal(subject="m-1", roles=("manager",), team="east", purpose="support")

        def service_path() -> None:
            caller = caller_for(principal, authorizer)
            modes = customers._modes(caller, FIELDS)
            customers._reveal_rows(caller, rows, modes)  # type: ignore[arg-type]

        def cold_path() -> None:
            vault.forget_all()
            vault_path()

        vault_path()  # warm the DEK cache once
        results = {
            "baseline: 3,000 bare AES-GCM decryptions": _best(args.rounds, baseline),
            "vault reveal, warm DEK cache": _best(args.rounds, vault_path),
            "customer service reveal loop, warm": _best(args.rounds, service_path),
            "vault reveal, cold (unwrap every DEK)": _best(max(3, args.rounds // 5), cold_path),
        }
        keys.shred_secrets.close()

    base = results["baseline: 3,000 bare AES-GCM decryptions"]
    print(f"revealing {len(FIELDS)} fields on {args.customers} customers (best of {args.rounds})")
    for label, seconds in results.items():
        print(f"  {label:<45} {seconds * 1000:8.2f} ms  {seconds / base:5.2f}x")
    print("target: vault reveal (warm) within 1.5x of the baseline")


if __name__ == "__main__":
    main()
