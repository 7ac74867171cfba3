"""People's accounts and console sessions, through the real ASGI app on both databases:
`custos users`, sign-in (Argon2id, throttled per account and address, TOTP), the
session cookie, CSRF on every form post, and the audit of it all. What the screens show
is checked in a real browser in tests/test_console_browser.py."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import sys
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from server.app import AppState
from server.caller import caller_for
from server.cli import invoke
from server.cli.context import operator
from server.config import Settings
from server.data.models.audit import AuditEvent
from server.data.models.security import SecurityEvent
from server.data.models.user import User
from server.users.service import Accounts
from tests.conftest import Api

PASSWORD = "correct horse battery staple"


def _accounts(state: AppState) -> Accounts:
    return Accounts(state.services.clock, state.settings, state.services.vault)


async def _add(
    state: AppState, username: str, roles: list[str], *, team: str | None = None, totp: bool = False
) -> User:
    async with state.sessions() as session, session.begin():
        await state.services.authorizer.refresh(session, force=True)
        caller = caller_for(operator(), state.services.authorizer)
        return await _accounts(state).add(
            session, caller, username=username, password=PASSWORD, roles=roles, team=team, totp=totp
        )


@pytest.fixture
async def browser(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 52000))
    async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as client:
        yield client


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def _sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, code: str = ""
) -> httpx.Response:
    page = await client.get("/console/login")
    form = {"csrf": _csrf(page.text), "username": username, "password": password, "code": code}
    return await client.post("/console/login", data=form)


async def _events(state: AppState, name: str) -> list[AuditEvent]:
    async with state.sessions() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.operation_name == name).order_by(AuditEvent.seq)
        )
        return list(rows)


async def test_sign_in_sets_a_strict_cookie_and_is_audited(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    await _add(state, "ann", ["agent"], team="east")
    response = await _sign_in(browser, "ann")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("custos_session=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/console"):
        assert attribute in cookie
    assert "Secure" not in cookie  # dev over plain HTTP; prod sets it
    page = await browser.get("/console/agent")
    assert page.status_code == 200
    assert "ann · agent · east" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    [event] = await _events(state, "console sign-in")
    assert (event.subject, event.outcome, event.purpose) == ("ann", "ok", "support")
    # Signing out ends the session (and is audited); the old cookie opens nothing.
    old = browser.cookies["custos_session"]
    signout = await browser.post("/console/logout", data={"csrf": _csrf(page.text)})
    assert signout.status_code == 303
    assert [e.outcome for e in await _events(state, "console sign-out")] == ["ok"]
    assert "custos_session" not in browser.cookies
    again = await browser.get("/console/agent", headers={"Cookie": f"custos_session={old}"})
    assert again.headers["location"] == "/console/login"


async def test_a_wrong_password_is_refused_audited_and_counted(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    await _add(state, "bea", ["compliance"])
    response = await _sign_in(browser, "bea", "not the password at all")
    assert response.status_code == 401
    assert "custos_session" not in response.headers.get("set-cookie", "")
    unknown = await _sign_in(browser, "nobody-at-all", "not the password at all")
    assert unknown.status_code == 401
    assert unknown.text.count("is not right") == response.text.count("is not right") == 1
    [event] = await _events(state, "console sign-in")
    assert (event.subject, event.outcome) == ("bea", "denied")
    async with state.sessions() as session:
        counted = await session.scalars(select(SecurityEvent.count))
        assert sum(counted) == 2


async def test_sign_ins_are_throttled_per_account_and_address(settings: Settings) -> None:
    from server.app import create_app

    limited = settings.model_copy(
        update={
            "rate_limits": True,
            "rate_limit_signin_account": "3/15 minutes",
            "rate_limit_signin_address": "5/15 minutes",
        }
    )
    app = create_app(limited, migrate=False)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.custos
        await _add(state, "cai", ["agent"])
        await _add(state, "cid", ["agent"])

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 52000))
            return httpx.AsyncClient(transport=transport, base_url="http://custos.test")

        async with client("198.51.100.1") as one, client("198.51.100.2") as two:
            for _ in range(3):
                assert (await _sign_in(one, "cai", "wrong password, wrong")).status_code == 401
            # The account waits now, whoever asks and even with the right password.
            assert (await _sign_in(two, "cai")).status_code == 429
            # Another account from a fresh address is not held up by it.
            assert (await _sign_in(two, "cid")).status_code == 303
            # One address trying many accounts is held up too.
            for name in ("x1", "x2"):
                assert (await _sign_in(one, name, "wrong password, wrong")).status_code == 401
            assert (await _sign_in(one, "cid")).status_code == 429


async def test_a_second_factor_when_the_account_has_one(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    user = await _add(state, "dai", ["manager"], team="east", totp=True)
    secret = await _accounts(state).second_factors.secret(user)
    assert secret is not None
    # The database holds the secret only wrapped under the KEK, bound to this account.
    async with state.sessions() as session:
        stored = await session.get(User, user.id)
    assert stored is not None
    assert stored.totp_secret is None
    assert stored.totp_sealed is not None
    assert secret.encode() not in stored.totp_sealed
    assert (await _sign_in(browser, "dai")).status_code == 401
    assert (await _sign_in(browser, "dai", code="000000")).status_code in (401, 303)
    code = pyotp.TOTP(secret).now()
    assert (await _sign_in(browser, "dai", code=code)).status_code == 303


async def test_a_sealed_second_factor_opens_only_for_its_own_account(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    """A sealed secret copied onto another account's row does not open there: that
    account's sign-ins fail instead of accepting the other account's codes."""
    dai = await _add(state, "dai2", ["manager"], totp=True)
    secret = await _accounts(state).second_factors.secret(dai)
    assert secret is not None
    eli = await _add(state, "eli", ["manager"], totp=True)
    async with state.sessions() as session, session.begin():
        row = await session.get(User, eli.id)
        assert row is not None
        row.totp_sealed, row.totp_kek_version = dai.totp_sealed, dai.totp_kek_version
    code = pyotp.TOTP(secret).now()
    assert (await _sign_in(browser, "eli", code=code)).status_code == 401
    assert (await _sign_in(browser, "dai2", code=code)).status_code == 303


async def test_a_second_factor_from_before_sealing_is_sealed_at_sign_in(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    """Accounts migrated from before sealing keep working; the first sign-in seals the
    secret and clears it from the row."""
    user = await _add(state, "fia", ["manager"])
    secret = pyotp.random_base32()
    async with state.sessions() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        row.totp_secret = secret
    assert (await _sign_in(browser, "fia")).status_code == 401
    assert (await _sign_in(browser, "fia", code=pyotp.TOTP(secret).now())).status_code == 303
    async with state.sessions() as session:
        row = await session.get(User, user.id)
    assert row is not None
    assert row.totp_secret is None
    assert row.totp_sealed is not None
    assert await _accounts(state).second_factors.secret(row) == secret


async def test_form_posts_need_the_sessions_csrf_token(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    await _add(state, "eve", ["agent"], team="east")
    # The sign-in form itself: no token, no sign-in.
    await browser.get("/console/login")
    refused = await browser.post("/console/login", data={"username": "eve", "password": PASSWORD})
    assert refused.status_code == 403
    await _sign_in(browser, "eve")
    page = await browser.get("/console/agent")
    for form in ({"purpose": "sales"}, {"purpose": "sales", "csrf": "forged"}):
        assert (await browser.post("/console/purpose", data=form)).status_code == 403
    assert 'value="support" selected' in (await browser.get("/console/agent")).text
    ok = await browser.post("/console/purpose", data={"purpose": "sales", "csrf": _csrf(page.text)})
    assert ok.status_code == 303
    assert 'value="sales" selected' in (await browser.get("/console/agent")).text


async def test_form_posts_are_read_within_the_body_limit(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    """A console form is bounded like every other body: too large (declared or streamed),
    not a plain form, or a flood of fields is refused before anything runs."""
    await _add(state, "ida", ["agent"], team="east")
    limit = state.settings.max_body_bytes
    login = await browser.get("/console/login")
    padded = {"csrf": _csrf(login.text), "username": "ida", "password": "x" * limit}
    assert (await browser.post("/console/login", data=padded)).status_code == 413
    assert await _events(state, "console sign-in") == []

    async def streamed() -> AsyncIterator[bytes]:
        # No Content-Length: the limit holds on what arrives, not on what is declared.
        yield b"csrf=x&password="
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    chunked = await browser.post(
        "/console/login",
        content=streamed(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert chunked.status_code == 413
    await _sign_in(browser, "ida")
    token = _csrf((await browser.get("/console/agent")).text)
    big = await browser.post("/console/purpose", data={"csrf": token, "purpose": "s" * limit})
    assert big.status_code == 413
    multipart = await browser.post(
        "/console/purpose", data={"csrf": token, "purpose": "sales"}, files={"f": b"1"}
    )
    assert multipart.status_code == 415
    flood = {"csrf": token, "purpose": "sales", **{f"k{i}": "v" for i in range(100)}}
    assert (await browser.post("/console/purpose", data=flood)).status_code == 400
    # None of them changed the session's purpose; a plain form still does.
    assert 'value="support" selected' in (await browser.get("/console/agent")).text
    ok = await browser.post("/console/purpose", data={"csrf": token, "purpose": "sales"})
    assert ok.status_code == 303
    assert 'value="sales" selected' in (await browser.get("/console/agent")).text


async def test_disabling_an_account_ends_its_sessions(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    await _add(state, "fay", ["agent"])
    await _sign_in(browser, "fay")
    assert (await browser.get("/console/agent")).status_code == 200
    async with state.sessions() as session, session.begin():
        await state.services.authorizer.refresh(session, force=True)
        caller = caller_for(operator(), state.services.authorizer)
        await _accounts(state).disable(session, caller, "fay")
    assert (await browser.get("/console/agent")).headers["location"] == "/console/login"
    assert (await _sign_in(browser, "fay")).status_code == 401


async def test_the_console_reads_through_the_api_as_its_user(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    """No back door: an analyst's console shows what the API shows an analyst (no
    customer field at all), and the page's reads are audited as that user's."""
    await _add(state, "gus", ["analyst"])
    await _sign_in(browser, "gus")
    page = await browser.get("/console/agent")
    assert page.status_code == 200
    [event] = await _events(state, "ConsoleMyCustomers")
    assert (event.subject, event.operation_type, event.purpose) == ("gus", "query", "analytics")
    admin = await browser.get("/console/admin")
    assert "not allowed" in admin.text


async def _users(monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return await asyncio.to_thread(invoke, ["users", *args])


async def test_the_users_command(
    app: Starlette,
    operator_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    browser: httpx.AsyncClient,
) -> None:
    add = ("add", "--username", "hal", "--role", "agent", "--team", "east", "--password-stdin")
    assert await _users(monkeypatch, PASSWORD + "\n", *add) == 0
    assert await _users(monkeypatch, PASSWORD + "\n", *add) == 1  # the name is taken
    short = ("add", "--username", "ivy", "--role", "agent", "--password-stdin")
    assert await _users(monkeypatch, "short\n", *short) == 2
    assert await _users(monkeypatch, "", "disable", "--username", "nobody") == 1
    capsys.readouterr()
    assert await _users(monkeypatch, "", "list") == 0
    assert capsys.readouterr().out.splitlines() == ["hal\tagent\teast\t-\tactive\t-"]
    assert (await _sign_in(browser, "hal")).status_code == 303
    new = "another long passphrase"
    assert (
        await _users(monkeypatch, new + "\n", "reset", "--username", "hal", "--password-stdin") == 0
    )
    assert (await _sign_in(browser, "hal")).status_code == 401
    assert (await _sign_in(browser, "hal", new)).status_code == 303
    assert await _users(monkeypatch, "", "disable", "--username", "hal") == 0
    assert (await _sign_in(browser, "hal", new)).status_code == 401


CREATE = """mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
  ... on CustomerCreated { customer { id } } ... on UserError { code message } } }"""
ADD_POINT = """mutation($id: ID!, $input: ContactPointInput!) {
  addContactPoint(customerId: $id, input: $input) { __typename } }"""
OPEN = """mutation($input: OpenComplaintInput!) { openComplaint(input: $input) {
  ... on ComplaintPayload { complaint { id } } ... on UserError { code message } } }"""


async def test_the_agents_and_compliance_officers_work(
    state: AppState, api: Api, browser: httpx.AsyncClient
) -> None:
    """An agent moves a complaint along; a compliance officer sees the agent's access,
    exports the audit as CSV, checks the ledger, downloads the person's data and erases
    them only after typing their id again."""
    agent_token = api.token("agent", subject="ann", team="east")
    created = await api.gql(
        CREATE,
        {"input": {"name": "Lin Jing", "phone": "13700000077", "nationalId": "110101199003071233"}},
        token=agent_token,
        purpose="support",
    )
    customer = created["data"]["createCustomer"]["customer"]["id"]
    opened = await api.gql(
        OPEN,
        {
            "input": {
                "customerId": customer,
                "category": "DELIVERY",
                "severity": "low",
                "description": "late parcel",
            }
        },
        token=agent_token,
        purpose="support",
    )
    complaint = opened["data"]["openComplaint"]["complaint"]["id"]
    point = await api.gql(
        ADD_POINT,
        {"id": customer, "input": {"kind": "WECHAT", "value": "Lin_Jing88"}},
        token=agent_token,
        purpose="support",
    )
    assert point["data"] == {"addContactPoint": {"__typename": "ContactPointAdded"}}, point
    await _add(state, "ann", ["agent"], team="east")
    await _add(state, "bea", ["compliance"])

    await _sign_in(browser, "ann")
    # Found by a word of the name (the keyed name search), and nobody by another name.
    by_name = await browser.get("/console/agent", params={"by": "name", "value": "lin"})
    assert f'href="/console/agent/customers/{customer}"' in by_name.text.split('id="found"')[1]
    nobody = await browser.get("/console/agent", params={"by": "name", "value": "Zhao"})
    assert 'id="no-match"' in nobody.text
    # Found by a WeChat contact point, in any case.
    by_wechat = await browser.get("/console/agent", params={"by": "wechat", "value": "LIN_JING88"})
    assert '<option value="wechat" selected>' in by_wechat.text
    assert f'href="/console/agent/customers/{customer}"' in by_wechat.text.split('id="found"')[1]
    page = await browser.get(f"/console/agent/customers/{customer}")
    assert "*" in re.search(r'data-field="nationalId">([^<]*)<', page.text).group(1)  # type: ignore[union-attr]
    assert '<td class="status">OPEN</td>' in page.text
    step = await browser.post(
        f"/console/agent/complaints/{complaint}/acknowledge",
        data={"csrf": _csrf(page.text), "customer": customer},
    )
    assert step.status_code == 303
    page = await browser.get(step.headers["location"])
    assert '<td class="status">ACKNOWLEDGED</td>' in page.text
    await browser.post("/console/logout", data={"csrf": _csrf(page.text)})

    await _sign_in(browser, "bea")
    found = await browser.get(
        "/console/compliance", params={"customerId": customer, "field": "national_id"}
    )
    assert "ConsoleCustomerFile" in found.text
    assert "national_id:masked" in found.text
    assert re.search(r'class="subject">ann<', found.text)
    exported = await browser.get(
        "/console/compliance/audit.csv", params={"customerId": customer, "field": "national_id"}
    )
    assert exported.headers["content-type"].startswith("text/csv"), exported.text[-1500:]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:3] == ["seq", "occurred_at", "subject"]
    assert any(row[2] == "ann" and "national_id:masked" in row[9] for row in rows[1:])
    csrf = _csrf(found.text)
    ledger = await browser.post("/console/compliance/ledger", data={"csrf": csrf})
    assert 'id="ledger-status">✔' in ledger.text
    download = await browser.post(
        "/console/compliance/export", data={"csrf": csrf, "customer": customer}
    )
    assert download.headers["content-disposition"].startswith("attachment")
    assert "Lin Jing" in download.text  # the data subject's own data, in clear
    wrong = await browser.post(
        "/console/compliance/erase", data={"csrf": csrf, "customer": customer, "confirm": "yes"}
    )
    assert "does not match" in wrong.text
    still = await browser.post(
        "/console/compliance/export", data={"csrf": csrf, "customer": customer}
    )
    assert "Lin Jing" in still.text
    erased = await browser.post(
        "/console/compliance/erase",
        data={"csrf": csrf, "customer": customer, "confirm": customer},
    )
    assert erased.status_code == 303
    gone = await browser.post(
        "/console/compliance/export", data={"csrf": csrf, "customer": customer}
    )
    assert "Lin Jing" not in gone.text


async def test_an_admins_new_api_key_secret_is_shown_once(
    state: AppState, browser: httpx.AsyncClient
) -> None:
    await _add(state, "cal", ["admin"])
    await _sign_in(browser, "cal")
    page = await browser.get("/console/admin")
    created = await browser.post(
        "/console/admin/create-key",
        data={"csrf": _csrf(page.text), "name": "shop sync", "roles": "integrator"},
    )
    secret = re.search(r'id="new-secret">[^<]*<code>([^<]+)</code>', created.text)
    assert secret is not None
    again = await browser.get("/console/admin")
    assert "shop sync" in again.text
    assert secret.group(1) not in again.text
    # Validation errors in place: a rule the vocabulary refuses.
    refused = await browser.post(
        "/console/admin/add-rule",
        data={"csrf": _csrf(page.text), "subject": "agent", "object": "nope", "action": "read"},
    )
    assert 'id="errors-add-rule"' in refused.text
