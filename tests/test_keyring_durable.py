"""The keyring file is replaced durably, and the key store's synchronous file I/O stays
off the event loop every request shares."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path

import pytest

from server.app import AppState
from server.vault import LocalKeyring
from tests.conftest import Api

CREATE = """
mutation New($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename }
}
"""


def test_the_new_keyring_is_on_disk_before_it_takes_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys" / "keyring.json"
    keyring = LocalKeyring.load(path, create=True)
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        steps.append(("fsync " + kind, os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        steps.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    keyring.add_version("kek")
    assert steps == [
        ("fsync file", str(path.with_suffix(".tmp"))),
        ("replace", str(path)),
        ("fsync dir", str(path.parent)),
    ]
    assert LocalKeyring.load(path, create=False).kek_versions() == [1, 2]


def test_a_write_that_fails_half_way_leaves_the_old_keyring_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keyring.json"
    keyring = LocalKeyring.load(path, create=True)
    before = path.read_bytes()

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        keyring.add_version("kek")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert LocalKeyring.load(path, create=False).kek_versions() == [1]


async def test_a_busy_key_store_does_not_stall_the_event_loop(
    api: Api, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = state.services.vault.keys
    assert isinstance(keys, LocalKeyring)
    store = keys.shred_secrets
    reached, alive, held = threading.Event(), threading.Event(), threading.Event()
    answered: list[bool] = []
    store_call = store.get_or_create

    def noting_call(customer_id: str) -> bytes:
        reached.set()
        return store_call(customer_id)

    monkeypatch.setattr(store, "get_or_create", noting_call)

    def hold_the_store() -> None:
        # Another thread keeps the store busy (as a bulk import's batch does) until the
        # event loop shows it is still running, or for 10 s if it is stuck.
        with store._lock:
            held.set()
            answered.append(alive.wait(10))

    holder = threading.Thread(target=hold_the_store)
    holder.start()
    held.wait(10)
    create = asyncio.create_task(
        api.gql(CREATE, {"input": {"name": "Busy Store"}}, token=api.token("agent"))
    )
    # The request reaches the store and waits for it; the loop must keep running.
    await asyncio.to_thread(reached.wait, 10)
    alive.set()
    body = await create
    holder.join()
    assert answered == [True]
    assert body["data"]["createCustomer"]["__typename"] == "CustomerCreated", body
