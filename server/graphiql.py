"""Dev GraphiQL: the page and its pinned, vendored assets (server/static/graphiql/).

Only in `CUSTOS_ENV=dev`. Everything the page loads comes from this server, so it works
offline. Its header editor is prefilled with a manager's dev token and `X-Purpose`, minted
here for browsers on this machine only (a loopback client) and never for RS256 setups,
whose tokens this server cannot sign. The page keeps nothing about headers in the
browser's storage. The assets are rebuilt by `make graphiql-assets` (tools/graphiql/).
"""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from server.auth.tokens import dev_token
from server.config import Settings

ASSET_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
ASSET_PATH = "/graphiql/static"
# The files the page may load, and their media types; nothing else is served.
ASSETS = {
    "react.production.min.js": "text/javascript",
    "react-dom.production.min.js": "text/javascript",
    "graphiql.min.js": "text/javascript",
    "graphiql.min.css": "text/css",
    "custos-graphiql.js": "text/javascript",
}
PREFILLED_ROLE = "manager"
PREFILLED_PURPOSE = "support"
FIRST_QUERY = """# Headers below: a manager's dev token.
# Ctrl-Enter runs the query.
{
  customers(first: 5) {
    totalCount
    edges { node { id name phone nationalId tier lifecycle } }
  }
}
"""
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# The page runs only its own scripts and talks only to this server.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def prefilled_headers(settings: Settings, request: Request) -> dict[str, str]:
    """The headers the editor starts with: a dev token for a loopback browser, else none."""
    client = request.client.host if request.client else None
    signs_own_tokens = settings.jwt_public_key_file is None and settings.jwt_jwks_file is None
    if settings.env != "dev" or client not in LOOPBACK or not signs_own_tokens:
        return {}
    token = dev_token(settings, PREFILLED_ROLE, ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}", "X-Purpose": PREFILLED_PURPOSE}


def graphiql_page(settings: Settings, request: Request) -> Response:
    config = {
        "endpoint": request.url.path,
        "headers": prefilled_headers(settings, request),
        "query": FIRST_QUERY,
    }
    # `<` escaped, so no value can close the script element it sits in.
    embedded = orjson.dumps(config).decode().replace("<", "\\u003c")
    html = (ASSET_DIR / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(
        html.replace("__CUSTOS_GRAPHIQL_CONFIG__", embedded),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            # The page carries a token: never cached, never sent on as a referrer.
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def graphiql_asset(settings: Settings, request: Request) -> Response:
    name = request.path_params.get("name", "")
    media = ASSETS.get(name)
    if settings.env != "dev" or media is None:
        return Response(b'{"error":"not found"}', 404, media_type="application/json")
    return FileResponse(
        ASSET_DIR / name,
        media_type=media,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
