"""The console in a real headless Chromium against `custos serve` with demo data: people
sign in with the dev accounts `make serve` prints, and every screen shows what the same
GraphQL API, policy and audit give that person. Screenshots of each screen land in
`test-output/console/` (or `$CUSTOS_SCREENSHOTS`) for review."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.test_graphiql import _chromium, served

__all__ = ["served"]  # the fixture, imported for this module's tests

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_NAME = "<script>window.__pwned = 1</script> Zhang"


def _shots() -> Path:
    folder = Path(os.environ.get("CUSTOS_SCREENSHOTS") or ROOT / "test-output" / "console")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _tokens(home: Path) -> dict[str, str]:
    tokens = {}
    for line in (home / "dev-tokens.env").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        tokens[name.removesuffix("_TOKEN").lower()] = value
    return tokens


def _gql(url: str, token: str, query: str, variables: dict[str, object]) -> dict[str, object]:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "support"},
        timeout=30,
    )
    body: dict[str, object] = response.json()
    return body


@pytest.mark.slow
def test_the_console_in_a_real_browser(served: str, tmp_path: Path) -> None:
    _chromium()
    from tests.browser import Page, browser, text_of

    home = tmp_path / "home"
    password = (home / "dev-console-password").read_text().strip()
    tokens = _tokens(home)
    # A customer of the agent whose name is markup: the page must show it as text.
    created = _gql(
        served,
        tokens["agent"],
        "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {"
        " ... on CustomerCreated { customer { id } } ... on UserError { code message } } }",
        {
            "input": {
                "name": SCRIPT_NAME,
                "phone": "13912345678",
                "email": "zhang@example.com",
                "nationalId": "110101199003071233",
                "bankCard": "6222020200112233446",
            }
        },
    )
    result = created["data"]["createCustomer"]  # type: ignore[index]
    assert "customer" in result, result
    customer_id = result["customer"]["id"]
    # ... with a WeChat ID among its contact points, to be found by.
    added = _gql(
        served,
        tokens["agent"],
        "mutation($id: ID!, $input: ContactPointInput!) { addContactPoint(customerId: $id,"
        " input: $input) { __typename } }",
        {"id": customer_id, "input": {"kind": "WECHAT", "value": "Zhang_Console1"}},
    )
    assert added["data"] == {"addContactPoint": {"__typename": "ContactPointAdded"}}, added
    shots = _shots()

    def settle(page: Page, what: str, expression: str) -> None:
        page.wait_for(
            f"document.readyState === 'complete' && ({expression})", what=what, timeout=60
        )

    def sign_in(page: Page, username: str) -> None:
        page.goto(f"{served}/console/login")
        settle(page, "the sign-in form", "!!document.querySelector('#login-form')")
        page.evaluate(
            "(() => { const f = document.querySelector('#login-form');"
            f" f.username.value = {json.dumps(username)};"
            f" f.password.value = {json.dumps(password)}; f.submit(); }})()"
        )
        settle(page, f"{username} signed in", "!!document.querySelector('#who')")

    def sign_out(page: Page) -> None:
        page.evaluate("document.querySelector('#signout').closest('form').submit()")
        settle(page, "the sign-in page again", "!!document.querySelector('#login-form')")

    def file_field(page: Page, key: str) -> str:
        value: str = page.evaluate(text_of(f"#customer-file dd[data-field={key}]"))
        return value

    with browser(tmp_path / "profile") as page:
        # Signing in with a wrong password: the form again, with the error, no session.
        page.goto(f"{served}/console/login")
        settle(page, "the sign-in form", "!!document.querySelector('#login-form')")
        page.evaluate(
            "(() => { const f = document.querySelector('#login-form');"
            " f.username.value = 'agent-1'; f.password.value = 'not the password at all';"
            " f.submit(); })()"
        )
        settle(page, "the sign-in error", "!!document.querySelector('#login-error')")
        page.screenshot(shots / "00-sign-in.png")

        # --- the agent finds a customer and sees the file as the policy shows it
        sign_in(page, "agent-1")
        settle(page, "the agent screen", "!!document.querySelector('#find-form')")
        page.evaluate(
            "(() => { const f = document.querySelector('#find-form');"
            " f.by.value = 'phone'; f.value.value = '139 1234 5678'; f.submit(); })()"
        )
        settle(page, "the customer found by phone", "!!document.querySelector('#found a')")
        page.screenshot(shots / "01-agent-find.png")
        # Found by a WeChat ID too, written in another case than it was stored in.
        page.evaluate(
            "(() => { const f = document.querySelector('#find-form');"
            " f.by.value = 'wechat'; f.value.value = 'zhang_console1'; f.submit(); })()"
        )
        settle(
            page,
            "the customer found by WeChat ID",
            # The new page's address, not the form's fields (set on the page it replaces).
            "location.search.includes('by=wechat') && !!document.querySelector('#found a')",
        )
        found_href = page.evaluate("document.querySelector('#found a').getAttribute('href')")
        assert found_href == f"/console/agent/customers/{customer_id}"
        page.evaluate("document.querySelector('#found a').click()")
        settle(page, "the customer file", "!!document.querySelector('#customer-file')")
        # Markup in a name is text: shown as typed, never run.
        assert page.evaluate(text_of("#customer-name")) == SCRIPT_NAME
        assert page.evaluate("window.__pwned") is None
        assert file_field(page, "phone") == "+8613912345678"
        assert file_field(page, "email") == "zhang@example.com"
        # The agent's policy: national ID and bank card masked.
        national_id = file_field(page, "nationalId")
        assert "*" in national_id
        assert national_id != "110101199003071233"
        assert national_id.endswith("1233")
        assert "*" in file_field(page, "bankCard")
        page.screenshot(shots / "02-agent-file.png")

        # A form post without the CSRF token is refused, and changes nothing.
        status = page.evaluate(
            "fetch('/console/purpose', {method: 'POST', headers: {'Content-Type':"
            " 'application/x-www-form-urlencoded'}, body: 'purpose=marketing'})"
            ".then(r => r.status)"
        )
        assert status == 403
        # Logging an interaction goes through the same mutation as any client's.
        page.evaluate(
            "(() => { const f = document.querySelector('#interaction-form');"
            " f.subject.value = 'Asked about the <b>warranty</b>'; f.submit(); })()"
        )
        settle(page, "the logged interaction", "!!document.querySelector('#interactions')")
        assert "<b>warranty</b>" in page.evaluate(text_of("#interactions"))
        sign_out(page)

        # --- compliance finds the access the agent's view just made
        sign_in(page, "demo-compliance")
        settle(page, "the compliance screen", "!!document.querySelector('#who-saw-form')")
        page.evaluate(
            "(() => { const f = document.querySelector('#who-saw-form');"
            f" f.customerId.value = {json.dumps(customer_id)}; f.submit(); }})()"
        )
        # Waits for the submitted search's page (its address names the customer), not the
        # screen it replaces, which may already list the same events: read there, the
        # details opened below would belong to a page about to go.
        settle(
            page,
            "the audit events",
            f"location.search.includes({json.dumps(customer_id)})"
            " && (document.querySelector('#audit-events') || {innerText: ''})"
            ".innerText.includes('ConsoleCustomerFile')",
        )
        events = page.evaluate(text_of("#audit-events"))
        assert "agent-1" in events
        assert "ConsoleCustomerFile" in events
        page.evaluate(
            "document.querySelectorAll('#audit-events details').forEach(d => d.open = true)"
        )
        assert "national_id:masked" in page.evaluate(text_of("#audit-events"))
        page.screenshot(shots / "03-compliance-audit.png")
        page.evaluate("document.querySelector('#ledger-form').submit()")
        settle(page, "the ledger status", "!!document.querySelector('#ledger-status')")
        assert "✔" in page.evaluate(text_of("#ledger-status"))
        page.screenshot(shots / "04-compliance-ledger.png")
        sign_out(page)

        # --- an admin removes a rule; the agent's next view changes
        sign_in(page, "demo-admin")
        page.goto(f"{served}/console/admin?role=agent")
        rule = "agent,customer.email,read:clear,allow"
        settle(page, "the agent's rules", f"!!document.querySelector('tr[data-rule=\"{rule}\"]')")
        page.screenshot(shots / "05-admin.png")
        page.evaluate(f"document.querySelector('tr[data-rule=\"{rule}\"] form').submit()")
        settle(page, "the rule removed", "!!document.querySelector('#message')")
        assert page.evaluate(f"!!document.querySelector('tr[data-rule=\"{rule}\"]')") is False
        # A rule the vocabulary refuses: the error is shown in place.
        page.evaluate(
            "(() => { const f = document.querySelector('#add-rule-form');"
            " f.object.value = 'no_such_thing'; f.action.value = 'read'; f.submit(); })()"
        )
        settle(page, "the rule's error", "!!document.querySelector('#errors-add-rule')")
        page.screenshot(shots / "06-admin-error.png")
        sign_out(page)

        sign_in(page, "agent-1")
        page.goto(f"{served}/console/agent/customers/{customer_id}")
        settle(page, "the customer file", "!!document.querySelector('#customer-file')")
        assert file_field(page, "email") != "zhang@example.com"
        assert file_field(page, "phone") == "+8613912345678"
        sign_out(page)

        # --- the manager's dashboard draws its charts from the metrics
        sign_in(page, "demo-manager")
        page.goto(f"{served}/console/manager")
        settle(
            page,
            "the charts drawn",
            "Number((document.querySelector('#chart-sales') || {getAttribute: () => 0})"
            ".getAttribute('data-rendered')) > 0",
        )
        assert page.evaluate("document.querySelectorAll('.chart canvas').length") >= 3
        assert page.evaluate("!!document.querySelector('#kpis')")
        page.screenshot(shots / "07-manager.png")
        # Chinese, switchable.
        page.evaluate("document.querySelector('#lang').click()")
        settle(page, "the Chinese page", "document.documentElement.lang === 'zh-CN'")
        assert "关键指标" in page.evaluate("document.body.innerText")
        page.screenshot(shots / "08-manager-zh.png")
        page.evaluate("document.querySelector('#lang').click()")
        settle(page, "the English page", "document.documentElement.lang === 'en'")
        # On a phone: the page fits the screen's width (wide tables scroll in their card).
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        for screen in ("manager", "agent"):
            page.goto(f"{served}/console/{screen}")
            settle(page, f"the {screen} screen on a phone", "!!document.querySelector('#who')")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            page.screenshot(shots / f"09-{screen}-phone.png")

    # Nothing was asked of any other host.
    elsewhere = [u for u in page.requests if not u.startswith((served + "/", "data:"))]
    assert elsewhere == []
    errors = [
        line
        for line in page.console
        if line.startswith(("error", "exception"))
        and "status of 401" not in line
        and "status of 403" not in line
    ]
    assert errors == []
