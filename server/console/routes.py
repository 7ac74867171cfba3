"""The console's routes: sign-in, sign-out and the four screens.

No back door: every screen reads and writes through `ConsoleBackend.graphql`, which runs
the GraphQL document through the same execution path as `POST /graphql` (the app's
`_execute`), as the signed-in user with the purpose they chose: the same policy, field
modes, rate limits and audit. The two things the API has no field for — accounts and the
ledger's verification — go through their domain services with a `Caller` built for the
same user (`run_as`): the gate decides and the audit records, as for any operation.

Sessions live in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` in prod) scoped to
`/console`; every form post carries the session's CSRF token (a hidden field, or the
`X-CSRF-Token` header for htmx) and is refused with 403 without it. Pages forbid inline
scripts by their Content-Security-Policy and load only this server's pinned assets.
"""

from __future__ import annotations

import csv
import functools
import io
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from server.audit.recorder import AuditRecorder
from server.auth.principal import PURPOSES, Principal
from server.caller import Caller, caller_for
from server.clock import Clock
from server.config import Settings
from server.console.i18n import LANGUAGES, pick_language, translator
from server.errors import CustosError
from server.graphql_http import HttpProblem, read_body
from server.ratelimit import RateLimited, RateLimits
from server.security.stream import record_refusal
from server.services import Services
from server.users.service import Accounts, ActiveSession

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# The files pages may load, and their media types; nothing else is served.
ASSETS = {
    "htmx.min.js": "text/javascript",
    "echarts.simple.min.js": "text/javascript",
    "console.js": "text/javascript",
    "console.css": "text/css",
}
SESSION_COOKIE = "custos_session"
LOGIN_CSRF_COOKIE = "custos_login_csrf"
LANG_COOKIE = "custos_lang"
CONSOLE_PATH = "/console"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# The purpose a new session starts with, by the first of the user's roles found here.
DEFAULT_PURPOSE = {
    "compliance": "compliance",
    "agent": "support",
    "support": "support",
    "manager": "support",
    "analyst": "analytics",
}
SCREENS = ("agent", "compliance", "admin", "manager")
# Which screen a role lands on (the screens themselves ask the policy, not this).
HOME_SCREEN = {
    "agent": "agent",
    "support": "agent",
    "compliance": "compliance",
    "admin": "admin",
    "manager": "manager",
    "analyst": "manager",
}
AUDIT_PAGE = 25
CSV_LIMIT = 5_000
# Events per GraphQL page of the CSV export, well inside the cost budget of a request.
CSV_PAGE = 200
T = TypeVar("T")

GraphQL = Callable[
    [Request, ActiveSession, str, dict[str, Any] | None, str | None],
    Awaitable[dict[str, Any]],
]


@dataclass
class ConsoleBackend:
    """What the console needs of the app: settings, sessions, services, the limits, and
    the one way to run a GraphQL operation as a signed-in user."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    services: Services
    accounts: Accounts
    rate_limits: RateLimits | None
    graphql: GraphQL
    # The HTTP edge's: the signed-in user as a principal of this request (with the roles
    # assigned in the database), and the one way an audit event is committed.
    principal: Callable[[AsyncSession, Request, ActiveSession], Awaitable[Principal]]
    record: Callable[[AsyncSession, AuditRecorder, str, str], Awaitable[None]]

    @property
    def clock(self) -> Clock:
        return self.services.clock


class Refused(Exception):
    """A console request refused before anything ran: 403 without the CSRF token, 413 for
    a form over `CUSTOS_MAX_BODY_BYTES`, 415 or 400 for one that is not a plain form."""

    def __init__(self, status: int = 403, message: str = "CSRF token missing or wrong"):
        super().__init__(message)
        self.status = status
        self.message = message


# The most fields a console form has is about a dozen; parsing stops well before a flood.
MAX_FORM_FIELDS = 64
FORM_MEDIA = "application/x-www-form-urlencoded"


async def read_form(request: Request, limit: int) -> FormData:
    """A posted form, read within the body limit every other endpoint has (starlette's own
    `request.form()` reads a urlencoded body whole, however large). Console forms are all
    urlencoded: another media type is refused rather than handed to a multipart parser."""
    media = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media != FORM_MEDIA:
        raise Refused(415, "a console form is posted as " + FORM_MEDIA)
    try:
        body = await read_body(request, limit)
        fields: list[tuple[str, str | UploadFile]] = [
            *parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        ]
    except HttpProblem as problem:
        raise Refused(problem.status, problem.message) from None
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the form could not be read") from None
    return FormData(fields)


def signed_in_page(
    handler: Callable[[Console, Request, ActiveSession], Awaitable[Response]],
) -> Callable[[Console, Request], Awaitable[Response]]:
    """A screen for a signed-in user: anyone else is sent to the sign-in page."""

    @functools.wraps(handler)
    async def route(console: Console, request: Request) -> Response:
        active = await console.signed_in(request)
        if active is None:
            return console.to_login()
        return await handler(console, request, active)

    return route


def form_post(
    handler: Callable[[Console, Request, ActiveSession, FormData], Awaitable[Response]],
) -> Callable[[Console, Request], Awaitable[Response]]:
    """A form post of a signed-in user, handled only once its form was read within bounds
    and its CSRF token proved it came from this session's page."""

    @functools.wraps(handler)
    async def route(console: Console, request: Request) -> Response:
        active = await console.signed_in(request)
        if active is None:
            return console.to_login()
        try:
            form = await console.csrf_checked_form(request, active)
        except Refused as refusal:
            return console.refused(refusal)
        return await handler(console, request, active, form)

    return route


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


class Console:
    def __init__(self, backend: ConsoleBackend) -> None:
        self.backend = backend
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # --- plumbing ----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        p = CONSOLE_PATH
        return [
            Route(p, self.home, methods=["GET"]),
            Route(f"{p}/", self.home, methods=["GET"]),
            Route(f"{p}/static/{{name}}", self.static, methods=["GET"]),
            Route(f"{p}/login", self.login_page, methods=["GET"]),
            Route(f"{p}/login", self.login, methods=["POST"]),
            Route(f"{p}/logout", self.logout, methods=["POST"]),
            Route(f"{p}/purpose", self.choose_purpose, methods=["POST"]),
            Route(f"{p}/lang/{{lang}}", self.choose_language, methods=["GET"]),
            Route(f"{p}/agent", self.agent, methods=["GET"]),
            Route(f"{p}/agent/customers/{{id}}", self.customer_file, methods=["GET"]),
            Route(
                f"{p}/agent/customers/{{id}}/interactions", self.log_interaction, methods=["POST"]
            ),
            Route(f"{p}/agent/complaints/{{id}}/{{step}}", self.move_complaint, methods=["POST"]),
            Route(f"{p}/compliance", self.compliance, methods=["GET"]),
            Route(f"{p}/compliance/audit.csv", self.audit_csv, methods=["GET"]),
            Route(f"{p}/compliance/ledger", self.ledger, methods=["POST"]),
            Route(f"{p}/compliance/export", self.subject_export, methods=["POST"]),
            Route(f"{p}/compliance/erase", self.subject_erase, methods=["POST"]),
            Route(f"{p}/admin", self.admin, methods=["GET"]),
            Route(f"{p}/admin/{{action}}", self.admin_post, methods=["POST"]),
            Route(f"{p}/manager", self.manager, methods=["GET"]),
        ]

    def _lang(self, request: Request) -> str:
        return pick_language(
            request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
        )

    def render(
        self,
        request: Request,
        template: str,
        active: ActiveSession | None,
        status: int = 200,
        **values: Any,
    ) -> Response:
        lang = self._lang(request)
        html = self.templates.get_template(template).render(
            t=translator(lang),
            lang=lang,
            other_lang="zh" if lang == "en" else "en",
            user=active.user if active else None,
            csrf=active.csrf_token if active else None,
            purpose=active.purpose if active else None,
            purposes=PURPOSES,
            path=request.url.path,
            screens=SCREENS,
            **values,
        )
        return self._secured(HTMLResponse(html, status))

    @staticmethod
    def _secured(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    async def signed_in(self, request: Request) -> ActiveSession | None:
        async with self.backend.sessions() as session, session.begin():
            return await self.backend.accounts.active(session, request.cookies.get(SESSION_COOKIE))

    def to_login(self) -> Response:
        return RedirectResponse(f"{CONSOLE_PATH}/login", 303)

    async def csrf_checked_form(self, request: Request, active: ActiveSession) -> FormData:
        """The posted form, once its CSRF token proved it came from this session's page."""
        form = await read_form(request, self.backend.settings.max_body_bytes)
        token = form.get("csrf")
        presented = token if isinstance(token, str) else request.headers.get("x-csrf-token")
        if not active.csrf_matches(presented):
            raise Refused
        return form

    def refused(self, refusal: Refused) -> Response:
        return self._secured(HTMLResponse(refusal.message, refusal.status))

    async def gql(
        self,
        request: Request,
        active: ActiveSession,
        query: str,
        variables: dict[str, Any] | None = None,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        return await self.backend.graphql(
            request, active, query, variables, purpose or active.purpose
        )

    async def run_as(
        self,
        request: Request,
        active: ActiveSession,
        name: str,
        work: Callable[[AsyncSession, Caller], Awaitable[T]],
    ) -> T:
        """A domain service the API has no field for, as the signed-in user: the gate
        decides, and the operation's audit event commits with what it changed."""
        backend = self.backend
        async with backend.sessions() as session, session.begin():
            principal = await self._principal(session, request, active)
            await backend.services.authorizer.refresh(session)
            caller = caller_for(principal, backend.services.authorizer)
            outcome = "ok"
            marker = await session.begin_nested()
            try:
                result = await work(session, caller)
            except CustosError:
                await marker.rollback()
                caller.audit.discard_changes()
                outcome = "denied" if caller.gate.refusals else "error"
                await self._audit(session, caller.audit, name, outcome)
                raise
            await marker.commit()
            await self._audit(session, caller.audit, name, outcome)
            return result

    async def _principal(
        self, session: AsyncSession, request: Request, active: ActiveSession
    ) -> Principal:
        return await self.backend.principal(session, request, active)

    async def _audit(
        self, session: AsyncSession, recorder: AuditRecorder, name: str, outcome: str
    ) -> None:
        await self.backend.record(session, recorder, name, outcome)

    # --- assets, language ---------------------------------------------------------------

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response(b"not found", 404)
        return FileResponse(
            STATIC_DIR / name,
            media_type=ASSETS[name],
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    async def choose_language(self, request: Request) -> Response:
        lang = request.path_params["lang"]
        back = request.query_params.get("next", CONSOLE_PATH)
        if not back.startswith(CONSOLE_PATH) or "//" in back or "\\" in back:
            back = CONSOLE_PATH
        response = RedirectResponse(back, 303)
        if lang in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE, lang, max_age=31_536_000, path=CONSOLE_PATH, samesite="strict"
            )
        return response

    # --- signing in and out -------------------------------------------------------------

    def _login_form(
        self, request: Request, *, error: str | None = None, status: int = 200
    ) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render(
            request, "login.html", None, status=status, login_csrf=token, error=error
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=self.backend.settings.env == "prod",
            path=CONSOLE_PATH,
        )
        return response

    async def login_page(self, request: Request) -> Response:
        if await self.signed_in(request) is not None:
            return RedirectResponse(CONSOLE_PATH, 303)
        return self._login_form(request)

    async def login(self, request: Request) -> Response:
        backend = self.backend
        try:
            form = await read_form(request, backend.settings.max_body_bytes)
        except Refused as refusal:
            return self.refused(refusal)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        presented = form.get("csrf")
        if (
            not expected
            or not isinstance(presented, str)
            or not secrets.compare_digest(expected.encode(), presented.encode())
        ):
            return self.refused(Refused())
        username = str(form.get("username") or "")[:256]
        password = str(form.get("password") or "")
        code = str(form.get("code") or "") or None
        address = _client(request)
        request_id = secrets.token_hex(8)
        if backend.rate_limits is not None:
            try:
                await backend.rate_limits.check_signin(username, address)
            except RateLimited:
                await self._refusal("SIGNIN_THROTTLED", address, request_id)
                return self._login_form(request, error="signin_throttled", status=429)
        async with backend.sessions() as session, session.begin():
            signed, user = await backend.accounts.sign_in(
                session, username=username, password=password, code=code, purposes=DEFAULT_PURPOSE
            )
            if signed is not None:
                active = ActiveSession(signed.user, "", "", signed.purpose)
                principal = await self._principal(session, request, active)
                await self._audit(session, AuditRecorder(principal), "console sign-in", "ok")
            elif user is not None:
                # A failure on an account that exists is that account's business: its
                # audit shows the attempt (bounded by the per-account throttle).
                failed = ActiveSession(user=user, token_hash="", csrf_token="", purpose=None)
                principal = await self._principal(session, request, failed)
                await self._audit(session, AuditRecorder(principal), "console sign-in", "denied")
        if signed is None:
            if backend.rate_limits is not None:
                await backend.rate_limits.failed_signin(username, address)
            await self._refusal("SIGNIN_FAILED", address, request_id)
            return self._login_form(request, error="signin_failed", status=401)
        response = RedirectResponse(CONSOLE_PATH, 303)
        response.set_cookie(
            SESSION_COOKIE,
            signed.token,
            httponly=True,
            samesite="strict",
            secure=backend.settings.env == "prod",
            path=CONSOLE_PATH,
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=CONSOLE_PATH)
        return response

    async def _refusal(self, code: str, address: str | None, request_id: str) -> None:
        await record_refusal(
            self.backend.sessions,
            code=code,
            client_addr=address,
            request_id=request_id,
            at=self.backend.clock.now(),
        )

    @form_post
    async def logout(self, request: Request, active: ActiveSession, form: FormData) -> Response:
        async with self.backend.sessions() as session, session.begin():
            await self.backend.accounts.sign_out(session, active)
            principal = await self._principal(session, request, active)
            await self._audit(session, AuditRecorder(principal), "console sign-out", "ok")
        response = RedirectResponse(f"{CONSOLE_PATH}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=CONSOLE_PATH)
        return response

    @form_post
    async def choose_purpose(
        self, request: Request, active: ActiveSession, form: FormData
    ) -> Response:
        purpose = str(form.get("purpose") or "") or None
        if purpose is not None and purpose not in PURPOSES:
            purpose = None
        async with self.backend.sessions() as session, session.begin():
            await self.backend.accounts.choose_purpose(session, active, purpose)
        back = str(form.get("next") or CONSOLE_PATH)
        if not back.startswith(CONSOLE_PATH) or "//" in back:
            back = CONSOLE_PATH
        return RedirectResponse(back, 303)

    @signed_in_page
    async def home(self, request: Request, active: ActiveSession) -> Response:
        screen = next((HOME_SCREEN[r] for r in active.user.roles if r in HOME_SCREEN), "agent")
        return RedirectResponse(f"{CONSOLE_PATH}/{screen}", 303)

    # --- agent --------------------------------------------------------------------------

    @signed_in_page
    async def agent(self, request: Request, active: ActiveSession) -> Response:
        q = request.query_params
        by = q.get("by", "phone")
        value = q.get("value", "").strip()
        found: list[dict[str, Any]] = []
        errors: list[str] = []
        searched = False
        if value and by in ("phone", "email", "nationalId", "wechat"):
            searched = True
            body = await self.gql(request, active, FIND_CUSTOMER, {by: value})
            match = (body.get("data") or {}).get("customerByContact")
            found = [match] if match else []
            errors = _messages(body)
        elif value and by in ("name", "customerNumber"):
            # The name search (keyed name tokens) and the customer number: a page of
            # matches under the caller's scope, audited as lookups like the contacts.
            searched = True
            body = await self.gql(request, active, SEARCH_CUSTOMERS, {"filter": {by: value}})
            found = (((body.get("data") or {}).get("customers") or {}).get("nodes")) or []
            errors = _messages(body)
        listing = await self.gql(request, active, MY_CUSTOMERS)
        customers = ((listing.get("data") or {}).get("customers") or {}).get("nodes") or []
        return self.render(
            request,
            "agent.html",
            active,
            by=by,
            value=value,
            found=found,
            searched=searched,
            errors=errors + _messages(listing),
            customers=customers,
        )

    async def customer_file(
        self,
        request: Request,
        active: ActiveSession | None = None,
        *,
        form_errors: Mapping[str, str] | None = None,
        message: str | None = None,
    ) -> Response:
        active = active or await self.signed_in(request)
        if active is None:
            return self.to_login()
        customer_id = request.path_params["id"]
        body = await self.gql(request, active, CUSTOMER_FILE, {"id": customer_id})
        data = body.get("data") or {}
        hidden = {
            str(e["path"][-1])
            for e in body.get("errors", [])
            if e.get("path") and e["extensions"].get("code") == "FORBIDDEN"
        }
        return self.render(
            request,
            "customer.html",
            active,
            customer=data.get("customer"),
            complaints=((data.get("complaints") or {}).get("nodes") or []),
            hidden=hidden,
            errors=[m for m in _messages(body) if not hidden] if not data.get("customer") else [],
            form_errors=form_errors or {},
            message=message or request.query_params.get("msg"),
            channels=CHANNELS,
            kinds=KINDS,
            categories=CATEGORIES,
            next_steps=NEXT_STEPS,
            fields=FILE_FIELDS,
        )

    @form_post
    async def log_interaction(
        self, request: Request, active: ActiveSession, form: FormData
    ) -> Response:
        customer_id = request.path_params["id"]
        values = {
            "customerId": customer_id,
            "channel": str(form.get("channel") or ""),
            "direction": str(form.get("direction") or ""),
            "kind": str(form.get("kind") or ""),
            "subject": str(form.get("subject") or "") or None,
            "notes": str(form.get("notes") or "") or None,
        }
        body = await self.gql(request, active, LOG_INTERACTION, {"input": values})
        problems = _user_errors(body, "logInteraction")
        if problems:
            return await self.customer_file(request, active, form_errors=problems)
        return RedirectResponse(f"{request.url.path.rsplit('/', 1)[0]}?msg=done", 303)

    @form_post
    async def move_complaint(
        self, request: Request, active: ActiveSession, form: FormData
    ) -> Response:
        step = request.path_params["step"]
        complaint_id = request.path_params["id"]
        customer_id = str(form.get("customer") or "")
        if step not in STEP_MUTATIONS:
            return self._secured(HTMLResponse("unknown step", 404))
        variables: dict[str, Any] = {"id": complaint_id}
        if step == "resolve":
            variables["input"] = {
                "resolution": str(form.get("resolution") or ""),
                "rootCause": str(form.get("rootCause") or "OTHER"),
            }
        body = await self.gql(request, active, STEP_MUTATIONS[step], variables)
        problems = _user_errors(body, STEP_FIELDS[step])
        try:
            uuid.UUID(customer_id)
        except ValueError:
            customer_id = ""
        if problems:
            request.scope["path_params"] = {"id": customer_id}
            return await self.customer_file(request, active, form_errors=problems)
        return RedirectResponse(f"{CONSOLE_PATH}/agent/customers/{customer_id}?msg=done", 303)

    # --- compliance ---------------------------------------------------------------------

    def _audit_filter(self, q: Mapping[str, str]) -> dict[str, Any]:
        filt: dict[str, Any] = {}
        for key in ("subject", "customerId", "field", "purpose", "outcome"):
            value = q.get(key, "").strip()
            if value:
                # Purpose and outcome are enums in the API: their names are the values upper-cased.
                filt[key] = value.upper() if key in ("purpose", "outcome") else value
        for key in ("since", "until"):
            value = q.get(key, "").strip()
            if value:
                filt[key] = value if "T" in value else f"{value}T00:00:00Z"
        return filt

    @signed_in_page
    async def compliance(self, request: Request, active: ActiveSession) -> Response:
        q = request.query_params
        filt = self._audit_filter(q)
        variables = {"filter": filt or None, "first": AUDIT_PAGE, "after": q.get("after") or None}
        body = await self.gql(request, active, AUDIT_EVENTS, variables)
        page = (body.get("data") or {}).get("auditEvents") or {}
        return self.render(
            request,
            "compliance.html",
            active,
            q=q,
            events=page.get("nodes") or [],
            total=page.get("totalCount"),
            page_info=page.get("pageInfo") or {},
            errors=_messages(body),
            csv_query=str(request.url.query),
            ledger=None,
            dsr_message=q.get("msg"),
        )

    @signed_in_page
    async def audit_csv(self, request: Request, active: ActiveSession) -> Response:
        filt = self._audit_filter(request.query_params)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "seq",
                "occurred_at",
                "subject",
                "roles",
                "purpose",
                "operation",
                "outcome",
                "object_type",
                "action",
                "fields",
                "denied_fields",
                "record_count",
                "record_ids",
            ]
        )
        after: str | None = None
        written = 0
        while written < CSV_LIMIT:
            variables = {"filter": filt or None, "first": CSV_PAGE, "after": after}
            body = await self.gql(request, active, AUDIT_EVENTS, variables)
            page = (body.get("data") or {}).get("auditEvents")
            if page is None:
                return self.render(request, "error.html", active, 403, errors=_messages(body))
            for event in page["nodes"]:
                # One row per access (an event with none still gets one row).
                for access in event["accesses"] or [None]:
                    writer.writerow(
                        [
                            event["seq"],
                            event["occurredAt"],
                            _cell(event["subject"]),
                            " ".join(event["roles"]),
                            (event["purpose"] or "").lower(),
                            _cell(event["operationName"] or event["operationType"].lower()),
                            event["outcome"].lower(),
                            access["objectType"] if access else "",
                            access["action"] if access else "",
                            " ".join(f"{f['name']}:{f['mode'].lower()}" for f in access["fields"])
                            if access
                            else "",
                            " ".join(access["deniedFields"]) if access else "",
                            access["recordCount"] if access else "",
                            " ".join(access["recordIds"]) if access else "",
                        ]
                    )
                written += 1
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="audit.csv"',
                "Cache-Control": "no-store",
            },
        )

    @form_post
    async def ledger(self, request: Request, active: ActiveSession, form: FormData) -> Response:
        audit = self.backend.services.audit

        async def verify(session: AsyncSession, caller: Caller) -> Any:
            caller.gate.require("audit", "read")
            status = await audit.status(session, self.backend.services.clock.now())
            return await audit.verify(session), status

        try:
            report, seal = await self.run_as(request, active, "console ledger verify", verify)
        except CustosError as error:
            return self.render(request, "error.html", active, 403, errors=[error.message])
        return self.render(request, "ledger.html", active, report=report, seal=seal)

    @form_post
    async def subject_export(
        self, request: Request, active: ActiveSession, form: FormData
    ) -> Response:
        customer_id = str(form.get("customer") or "").strip()
        body = await self.gql(request, active, EXPORT_SUBJECT, {"id": customer_id}, "compliance")
        data = (body.get("data") or {}).get("exportCustomerData")
        if data is None:
            return self.render(request, "error.html", active, 403, errors=_messages(body))
        return Response(
            orjson.dumps(data, option=orjson.OPT_INDENT_2),
            media_type="application/json",
            headers={
                "Content-Disposition": 'attachment; filename="customer-export.json"',
                "Cache-Control": "no-store",
            },
        )

    @form_post
    async def subject_erase(
        self, request: Request, active: ActiveSession, form: FormData
    ) -> Response:
        customer_id = str(form.get("customer") or "").strip()
        if not customer_id or str(form.get("confirm") or "").strip() != customer_id:
            return self.render(
                request,
                "error.html",
                active,
                200,
                errors=[translator(self._lang(request))["erase_mismatch"]],
            )
        body = await self.gql(request, active, ERASE_SUBJECT, {"id": customer_id}, "compliance")
        problems = _user_errors(body, "eraseCustomer")
        if problems or body.get("errors"):
            return self.render(
                request, "error.html", active, 200, errors=list(problems.values()) + _messages(body)
            )
        return RedirectResponse(f"{CONSOLE_PATH}/compliance?msg=erased", 303)

    # --- admin --------------------------------------------------------------------------

    async def admin(
        self,
        request: Request,
        active: ActiveSession | None = None,
        *,
        form_errors: Mapping[str, Mapping[str, str]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Response:
        active = active or await self.signed_in(request)
        if active is None:
            return self.to_login()
        role = request.query_params.get("role") or "agent"
        body = await self.gql(request, active, ADMIN_OVERVIEW, {"role": role})
        data = body.get("data") or {}
        users: list[Any] = []
        user_error: str | None = None
        accounts = self.backend.accounts

        async def listing(session: AsyncSession, caller: Caller) -> list[Any]:
            return await accounts.list(session, caller)

        try:
            users = await self.run_as(request, active, "console users list", listing)
        except CustosError as error:
            user_error = error.message
        return self.render(
            request,
            "admin.html",
            active,
            role=role,
            roles=data.get("roles") or [],
            rules=data.get("policies") or [],
            assignments=data.get("roleAssignments") or [],
            keys=data.get("apiKeys") or [],
            users=users,
            user_error=user_error,
            errors=_messages(body),
            form_errors=form_errors or {},
            message=request.query_params.get("msg"),
            **(extra or {}),
        )

    @form_post
    async def admin_post(self, request: Request, active: ActiveSession, form: FormData) -> Response:
        action = request.path_params["action"]
        f = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
        role = f.get("role_view") or "agent"
        back = f"{CONSOLE_PATH}/admin?role={role}&msg=done"
        if action in ("add-rule", "remove-rule"):
            mutation = "addPolicy" if action == "add-rule" else "removePolicy"
            rule = {
                "subject": f.get("subject", ""),
                "object": f.get("object", ""),
                "action": f.get("action") or None,
                "effect": str(f.get("effect") or "allow").upper(),
            }
            body = await self.gql(
                request, active, POLICY_MUTATION.replace("NAME", mutation), {"input": rule}
            )
            problems = _user_errors(body, mutation)
            if problems:
                return await self.admin(request, active, form_errors={action: problems})
            return RedirectResponse(back, 303)
        variables: dict[str, Any]
        if action == "explain":
            variables = {
                "subject": f.get("subject", ""),
                "object": f.get("object", ""),
                "action": f.get("action", ""),
                "roles": [r for r in f.get("roles", "").replace(",", " ").split() if r] or None,
            }
            body = await self.gql(request, active, EXPLAIN, variables)
            explanation = (body.get("data") or {}).get("explainAccess")
            return await self.admin(
                request,
                active,
                form_errors={"explain": {"_": "; ".join(_messages(body))}}
                if body.get("errors")
                else None,
                extra={"explanation": explanation, "explained": variables},
            )
        if action in ("assign", "revoke-role"):
            mutation = "assignRole" if action == "assign" else "revokeRole"
            body = await self.gql(
                request,
                active,
                ROLE_MUTATION.replace("NAME", mutation),
                {"subject": f.get("subject", ""), "role": f.get("role", "")},
            )
            problems = _user_errors(body, mutation)
            if problems:
                return await self.admin(request, active, form_errors={"assign": problems})
            return RedirectResponse(back, 303)
        if action == "create-key":
            variables = {
                "input": {
                    "name": f.get("name", ""),
                    "roles": [r for r in f.get("roles", "").replace(",", " ").split() if r],
                    "team": f.get("team") or None,
                }
            }
            body = await self.gql(request, active, CREATE_KEY, variables)
            problems = _user_errors(body, "createApiKey")
            created = (body.get("data") or {}).get("createApiKey") or {}
            if problems or "secret" not in created:
                return await self.admin(request, active, form_errors={"create-key": problems})
            # The secret is in this one response and nowhere else.
            return await self.admin(request, active, extra={"new_secret": created["secret"]})
        if action == "revoke-key":
            body = await self.gql(request, active, REVOKE_KEY, {"id": f.get("id", "")})
            problems = _user_errors(body, "revokeApiKey")
            if problems:
                return await self.admin(request, active, form_errors={"keys": problems})
            return RedirectResponse(back, 303)
        if action in ("add-user", "disable-user"):
            return await self._user_action(request, active, action, f, back)
        return self._secured(HTMLResponse("unknown action", 404))

    async def _user_action(
        self, request: Request, active: ActiveSession, action: str, f: dict[str, str], back: str
    ) -> Response:
        accounts = self.backend.accounts

        async def work(session: AsyncSession, caller: Caller) -> object:
            if action == "add-user":
                return await accounts.add(
                    session,
                    caller,
                    username=f.get("username", ""),
                    password=f.get("password", ""),
                    roles=[r for r in f.get("roles", "").replace(",", " ").split() if r],
                    team=f.get("team") or None,
                )
            return await accounts.disable(session, caller, f.get("username", ""))

        try:
            await self.run_as(request, active, f"console users {action.split('-')[0]}", work)
        except CustosError as error:
            field = getattr(error, "field", None) or "_"
            return await self.admin(
                request, active, form_errors={"users": {field: f"{error.message} ({error.code})"}}
            )
        return RedirectResponse(back, 303)

    # --- manager ------------------------------------------------------------------------

    @signed_in_page
    async def manager(self, request: Request, active: ActiveSession) -> Response:
        q = request.query_params
        today = self.backend.clock.now().date()
        try:
            to = date.fromisoformat(q.get("to", "")) if q.get("to") else today
            frm = (
                date.fromisoformat(q.get("from", "")) if q.get("from") else to - timedelta(days=29)
            )
        except ValueError:
            to, frm = today, today - timedelta(days=29)
        body = await self.gql(
            request, active, DASHBOARD, {"from": frm.isoformat(), "to": to.isoformat()}
        )
        data = body.get("data") or {}
        metrics = data.get("metrics") or {}
        total = metrics.get("total") or {}
        series = [
            {
                "bucket": point["bucket"],
                "newCustomers": point["kpis"]["newCustomers"],
                "orders": point["kpis"]["orders"],
                "salesTotal": float(point["kpis"]["salesTotal"]),
                "complaints": point["kpis"]["complaints"],
            }
            for point in total.get("series") or []
        ]
        complaints = ((data.get("complaints") or {}).get("nodes")) or []
        # Overdue first, then the soonest deadline.
        complaints.sort(key=lambda c: (not c["overdue"], c.get("resolveDueAt") or "~"))
        return self.render(
            request,
            "manager.html",
            active,
            frm=frm.isoformat(),
            to=to.isoformat(),
            current=total.get("current"),
            previous=total.get("previous"),
            kpi_names=KPI_NAMES,
            series_json=orjson.dumps(series).decode().replace("<", "\\u003c"),
            has_series=bool(series),
            complaints=complaints,
            care=data.get("careQueue") or [],
            at_risk=((data.get("atRiskCustomers") or {}).get("nodes")) or [],
            errors=_messages(body),
        )


def _cell(value: str | None) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _messages(body: Mapping[str, Any]) -> list[str]:
    return [str(e.get("message")) for e in body.get("errors") or []]


def _user_errors(body: Mapping[str, Any], field: str) -> dict[str, str]:
    """A mutation's `UserError` (or the request's errors) as {input field: message}."""
    result = (body.get("data") or {}).get(field)
    if isinstance(result, dict) and result.get("__typename") == "UserError":
        return {str(result.get("field") or "_"): f"{result['message']} ({result['code']})"}
    if result is None and body.get("errors"):
        return {"_": "; ".join(_messages(body))}
    return {}


def parse_when(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


FILE_FIELDS = (
    ("name", "name"),
    ("phone", "phone"),
    ("email", "email"),
    ("nationalId", "national_id"),
    ("bankCard", "bank_card"),
    ("gender", "gender"),
    ("birthday", "birthday"),
    ("address", "address"),
    ("industry", "industry"),
    ("region", "region"),
    ("occupation", "occupation"),
    ("tier", "tier"),
    ("lifecycle", "lifecycle"),
    ("needType", "need_type"),
    ("memberLevel", "member_level"),
    ("ownerId", "owner"),
    ("team", "team"),
)
CHANNELS = ("PHONE", "EMAIL", "WECHAT", "SMS", "CHAT", "VISIT", "MEETING")
KINDS = ("CONSULTATION", "FOLLOW_UP", "CARE", "PROMOTION", "SURVEY", "VISIT")
CATEGORIES = (
    "PRODUCT_QUALITY",
    "SERVICE_ATTITUDE",
    "COMMUNICATION",
    "DELIVERY",
    "BILLING",
    "OTHER",
)
# The steps a complaint in each status can take next (escalation is always offered).
NEXT_STEPS = {
    "OPEN": ("acknowledge",),
    "REOPENED": ("acknowledge",),
    "ACKNOWLEDGED": ("start",),
    "ESCALATED": ("start", "resolve"),
    "IN_PROGRESS": ("resolve",),
    "RESOLVED": ("follow_up",),
    "FOLLOWED_UP": ("close",),
}
STEP_FIELDS = {
    "acknowledge": "acknowledgeComplaint",
    "start": "startComplaintWork",
    "resolve": "resolveComplaint",
    "follow_up": "followUpComplaint",
    "close": "closeComplaint",
    "escalate": "escalateComplaint",
}
_RESULT = "{ __typename ... on UserError { code message field } }"
STEP_MUTATIONS = {
    step: (
        f"mutation ConsoleComplaintStep($id: ID!, $input: ResolveComplaintInput!) "
        f"{{ {field}(id: $id, input: $input) {_RESULT} }}"
        if step == "resolve"
        else f"mutation ConsoleComplaintStep($id: ID!) {{ {field}(id: $id) {_RESULT} }}"
    )
    for step, field in STEP_FIELDS.items()
}
FIND_CUSTOMER = """
query ConsoleFindCustomer($phone: String, $email: String, $nationalId: String, $wechat: String) {
  customerByContact(phone: $phone, email: $email, nationalId: $nationalId, wechat: $wechat) {
    id name phone email tier lifecycle
  }
}"""
SEARCH_CUSTOMERS = """
query ConsoleSearchCustomers($filter: CustomerFilterInput) {
  customers(first: 20, filter: $filter) { nodes { id name phone email tier } }
}"""
MY_CUSTOMERS = """
query ConsoleMyCustomers { customers(first: 20) { totalCount nodes { id name tier lifecycle } } }
"""
CUSTOMER_FILE = """
query ConsoleCustomerFile($id: ID!) {
  customer(id: $id) {
    id name phone email nationalId bankCard gender birthday address industry region
    occupation tier lifecycle needType memberLevel ownerId team
    interactions(first: 10) { nodes { occurredAt channel direction kind subject notes } }
  }
  complaints(first: 20, filter: {customerId: $id}) {
    nodes { id status category severity openedAt overdue description resolveDueAt }
  }
}"""
LOG_INTERACTION = f"""
mutation ConsoleLogInteraction($input: LogInteractionInput!) {{
  logInteraction(input: $input) {_RESULT}
}}"""
AUDIT_EVENTS = """
query ConsoleAuditEvents($filter: AuditEventFilter, $first: Int!, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id seq occurredAt subject roles purpose operationType operationName outcome clientAddr
      accesses {
        objectType action fields { name mode } deniedFields changedFields recordCount recordIds
      }
    }
  }
}"""
EXPORT_SUBJECT = "query ConsoleExportSubject($id: ID!) { exportCustomerData(id: $id) }"
ERASE_SUBJECT = f"mutation ConsoleEraseSubject($id: ID!) {{ eraseCustomer(id: $id) {_RESULT} }}"
ADMIN_OVERVIEW = """
query ConsoleAdmin($role: String) {
  roles { name ruleCount inherits assignedSubjects }
  policies(subject: $role) { id subject object action effect }
  roleAssignments { id subject role assignedAt assignedBy }
  apiKeys { id prefix name roles team createdAt revokedAt lastUsedAt }
}"""
POLICY_MUTATION = (
    "mutation ConsolePolicy($input: PolicyInput!) { NAME(input: $input) " + _RESULT + " }"
)
ROLE_MUTATION = (
    "mutation ConsoleRole($subject: String!, $role: String!) "
    "{ NAME(subject: $subject, role: $role) " + _RESULT + " }"
)
EXPLAIN = """
query ConsoleExplain($subject: String!, $object: String!, $action: String!, $roles: [String!]) {
  explainAccess(subject: $subject, object: $object, action: $action, roles: $roles) {
    allowed decision subject roles object action scope
    decidingRule { subject object action effect }
    matchingRules { subject object action effect }
  }
}"""
CREATE_KEY = """
mutation ConsoleCreateKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    __typename
    ... on ApiKeyCreated { secret apiKey { id prefix } }
    ... on UserError { code message field }
  }
}"""
REVOKE_KEY = f"mutation ConsoleRevokeKey($id: ID!) {{ revokeApiKey(id: $id) {_RESULT} }}"
KPI_NAMES = (
    "customersTotal",
    "newCustomers",
    "salesTotal",
    "orders",
    "averageOrderValue",
    "retentionRate",
    "churnRate",
    "repurchaseRate",
    "complaints",
    "complaintRate",
    "onTimeResolutionRate",
    "complaintSatisfaction",
)
DASHBOARD = (
    """
query ConsoleDashboard($from: Date!, $to: Date!) {
  metrics(from: $from, to: $to, granularity: DAY) {
    from to previousFrom
    total {
      current { """
    + " ".join(KPI_NAMES)
    + """ }
      previous { """
    + " ".join(KPI_NAMES)
    + """ }
      series { bucket kpis { newCustomers orders salesTotal complaints } }
    }
  }
  complaints(first: 50) {
    nodes { id customerId status category severity overdue openedAt resolveDueAt assigneeId }
  }
  careQueue(team: true, days: 7) { customerId ownerId reason dueOn detail }
  atRiskCustomers(first: 10) {
    nodes { customer { id name } risk { score signals { code description } } }
  }
}"""
)
