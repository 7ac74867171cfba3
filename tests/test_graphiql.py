"""Dev GraphiQL: served from vendored, pinned assets only, prefilled with a working dev
token for a browser on this machine, nothing in prod; and, in a real headless Chromium,
the page loads with no network beyond this server, its Docs pane lists the schema at
once and the prefilled query runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.config import Settings
from server.graphiql import ASSET_DIR, ASSETS
from tests.conftest import IN_CI, Api

ROOT = Path(__file__).resolve().parents[1]
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _config(page: str) -> dict[str, object]:
    match = re.search(r'id="custos-graphiql-config">(.*?)</script>', page, re.S)
    assert match is not None
    config: dict[str, object] = json.loads(match.group(1))
    return config


async def _client(app: Starlette, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def test_the_page_and_its_assets_come_from_this_server(app: Starlette, api: Api) -> None:
    async with await _client(app, "127.0.0.1") as client:
        page = await client.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        # Nothing from elsewhere: only this server's scripts, styles and endpoint.
        assert "http://" not in page.text.replace("http://www.w3.org", "")
        assert "https://" not in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "connect-src 'self';" in policy
        assert page.headers["cache-control"] == "no-store"
        sources = re.findall(r'(?:src|href)="(/graphiql/static/[^"]+)"', page.text)
        assert sorted(s.rsplit("/", 1)[1] for s in sources) == sorted(ASSETS)
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200, source
            assert asset.headers["content-type"].split(";")[0] == ASSETS[source.rsplit("/", 1)[1]]
            assert asset.content == (ASSET_DIR / source.rsplit("/", 1)[1]).read_bytes()
        for name in ("index.html", "SHA256SUMS", "..%2Fgraphiql.py", "nope.js"):
            assert (await client.get(f"/graphiql/static/{name}")).status_code == 404

    # The prefilled headers work as they are: the first query answers with data.
    config = _config(page.text)
    headers = config["headers"]
    assert isinstance(headers, dict)
    assert headers["X-Purpose"] == "support"
    token = headers["Authorization"].removeprefix("Bearer ")
    body = await api.gql("{ customers(first: 1) { totalCount } }", token=token)
    assert body["data"]["customers"]["totalCount"] == 0
    assert config["endpoint"] == "/graphql"
    assert "customers(first: 5)" in str(config["query"])


async def test_no_token_for_a_browser_elsewhere(app: Starlette) -> None:
    async with await _client(app, "203.0.113.9") as client:
        page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 200
    assert _config(page.text)["headers"] == {}
    assert "Bearer" not in page.text


async def test_no_graphiql_in_prod(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"env": "prod"}), migrate=False)
    async with app.router.lifespan_context(app), await _client(app, "127.0.0.1") as client:
        page = await client.get("/graphql", headers=HTML)
        assert page.status_code == 405
        assert "Bearer" not in page.text
        assert (await client.get("/graphiql/static/graphiql.min.js")).status_code == 404


def test_vendored_assets_are_the_pinned_builds() -> None:
    """The files are what tools/graphiql/vendor.sh wrote from the locked packages."""
    sums = (ASSET_DIR / "SHA256SUMS").read_text().split("\n")
    listed = {}
    for line in filter(None, sums):
        digest, name = line.split()
        listed[name] = digest
    assert set(listed) == set(ASSETS) - {"custos-graphiql.js"}
    for name, digest in listed.items():
        assert hashlib.sha256((ASSET_DIR / name).read_bytes()).hexdigest() == digest, name
    package = json.loads((ROOT / "tools/graphiql/package.json").read_text())
    lock = json.loads((ROOT / "tools/graphiql/package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)  # exact pins
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert lock["packages"][f"node_modules/{name}"]["integrity"].startswith("sha512-")


# --- in a real browser ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`custos serve` with a little demo data, in its own CUSTOS_HOME."""
    port = _free_port()
    env = {**os.environ, "CUSTOS_HOME": str(tmp_path / "home"), "CUSTOS_PORT": str(port)}
    for name in ("CUSTOS_DATABASE_URL", "CUSTOS_KEYRING", "CUSTOS_STATE_DIR", "CUSTOS_ENV"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--seed-if-empty", "20"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail("custos serve did not come up")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _chromium() -> None:
    from tests.browser import CHROMIUM

    if CHROMIUM is None:
        message = "chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)


@pytest.mark.slow
def test_graphiql_works_offline_in_a_real_browser(served: str, tmp_path: Path) -> None:
    _chromium()
    from tests.browser import browser, text_of

    with browser(tmp_path / "profile") as page:
        try:
            page.goto(f"{served}/graphql")
            # The schema was fetched with the prefilled token: the Docs pane is full at once.
            docs = page.wait_for(
                f"{text_of('.graphiql-doc-explorer')}.includes('query: Query') && "
                f"{text_of('.graphiql-doc-explorer')}",
                what="the Docs pane listing Query",
            )
            assert "mutation: Mutation" in docs
            assert "Customer" in docs
            page.evaluate("document.querySelector('.graphiql-execute-button').click()")
            # The result pane's editor (CodeMirror) holds the response as JSON text.
            result = page.wait_for(
                "(document.querySelector('.result-window .CodeMirror') || {CodeMirror: "
                "{getValue: () => ''}}).CodeMirror.getValue()",
                what="the query's result",
            )
            data = json.loads(result)
            assert data["data"]["customers"]["totalCount"] > 0
            assert data["data"]["customers"]["edges"][0]["node"]["name"]
            # The token is in the editor, not in the browser's storage.
            assert "Bearer" in page.evaluate(text_of(".graphiql-editor-tool"))
            for storage in ("localStorage", "sessionStorage"):
                assert page.evaluate(f"Object.keys({storage}).length") == 0, storage
        finally:
            page.screenshot(tmp_path / "graphiql.png")
    # Nothing was asked of any other host (fonts and icons are inline data).
    elsewhere = [u for u in page.requests if not u.startswith((served + "/", "data:"))]
    assert elsewhere == []
    assert any(u.endswith("/graphiql/static/graphiql.min.js") for u in page.requests)
    errors = [line for line in page.console if line.startswith(("error", "exception"))]
    assert errors == []
