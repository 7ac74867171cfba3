"""Rate limits per principal: query cost, lookups by sealed value, failed sign-ins.

Three buckets, each a sliding-window counter of the `limits` package (the capacity
comes back continuously as the window slides, like a token bucket refilling):

- cost: the static cost of every operation a subject or API key runs;
- lookups: lookups by a sealed value (`customerByContact`), per subject or API key;
- failed authentication: per client address, checked before any credential is;
- failed console sign-ins: per account and per client address, checked before a
  password is.

Counters live in this process by default, in Redis when `CUSTOS_REDIS_URL` is set (so
several instances share them). A refusal is `429 RATE_LIMITED` with `Retry-After` and
the `RateLimit-*` headers of the IETF draft. If Redis cannot be reached the request is
let through and the failure logged: a limiter outage must not become an API outage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from server.auth.principal import Principal
from server.config import Settings
from server.errors import CustosError
from server.graphql_http import HttpProblem

log = logging.getLogger("custos.ratelimit")
KEY_PREFIX = "custos"


@dataclass(frozen=True, slots=True)
class Quota:
    """One bucket as a client sees it: its size, what is left, seconds until it refills."""

    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={self.window_seconds}",
        }


class RateLimited(CustosError):
    """Too much, too fast: the bucket named in the message is empty for now."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, quota: Quota) -> None:
        super().__init__(message)
        self.quota = quota

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, self.quota.reset_seconds)), **self.quota.headers()}


class RateLimits:
    """The three buckets of one app (or none of them when the settings turn them off)."""

    def __init__(
        self,
        storage_uri: str,
        *,
        cost: str | None,
        lookups: str | None,
        failed_auth: str | None,
        signin_account: str | None = None,
        signin_address: str | None = None,
    ) -> None:
        self.storage: Any = storage_from_string(storage_uri, key_prefix=KEY_PREFIX)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.cost = parse(cost) if cost else None
        self.lookups = parse(lookups) if lookups else None
        self.failed_auth = parse(failed_auth) if failed_auth else None
        self.signin_account = parse(signin_account) if signin_account else None
        self.signin_address = parse(signin_address) if signin_address else None

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits | None:
        if not settings.rate_limits:
            return None
        return cls(
            storage_uri(settings.redis_url),
            cost=settings.rate_limit_cost,
            lookups=settings.rate_limit_lookups,
            failed_auth=settings.rate_limit_failed_auth,
            signin_account=settings.rate_limit_signin_account,
            signin_address=settings.rate_limit_signin_address,
        )

    async def check_address(self, address: str | None) -> None:
        """Refuse (429) an address that failed to authenticate too often, before its
        credentials are even looked at."""
        if self.failed_auth is None or address is None:
            return
        quota = await self._quota(self.failed_auth, "auth", address)
        if quota is not None and quota.remaining <= 0:
            raise too_many(RateLimited("too many failed authentications; retry later", quota))

    async def failed_authentication(self, address: str | None) -> None:
        if self.failed_auth is not None and address is not None:
            await self._hit(self.failed_auth, 1, "auth", address)

    async def check_signin(self, account: str, address: str | None) -> None:
        """Refuse (RateLimited) a sign-in to an account, or from an address, that failed
        too often lately, before its password is looked at."""
        buckets = (
            (self.signin_account, "signin-account", account),
            (self.signin_address, "signin-address", address),
        )
        for item, kind, key in buckets:
            if item is None or key is None:
                continue
            quota = await self._quota(item, kind, key)
            if quota is not None and quota.remaining <= 0:
                raise RateLimited("too many failed sign-ins; retry later", quota)

    async def failed_signin(self, account: str, address: str | None) -> None:
        if self.signin_account is not None:
            await self._hit(self.signin_account, 1, "signin-account", account)
        if self.signin_address is not None and address is not None:
            await self._hit(self.signin_address, 1, "signin-address", address)

    async def charge(
        self, principal: str, cost: int, lookups: int
    ) -> tuple[Quota | None, RateLimited | None]:
        """Take an operation's cost (and lookups) from the principal's buckets before it
        runs. Returns the cost bucket after the charge, and the refusal if one is empty."""
        if (
            self.lookups is not None
            and lookups > 0
            and not await self._hit(self.lookups, lookups, "lookup", principal)
        ):
            quota = await self._quota(self.lookups, "lookup", principal)
            if quota is not None:
                return quota, RateLimited("too many lookups by contact; slow down", quota)
        if self.cost is None:
            return None, None
        allowed = await self._hit(self.cost, max(cost, 1), "cost", principal)
        quota = await self._quota(self.cost, "cost", principal)
        if not allowed and quota is not None:
            return quota, RateLimited(
                f"the query cost budget is spent ({quota.limit} per "
                f"{quota.window_seconds} s); retry later",
                quota,
            )
        return quota, None

    async def close(self) -> None:
        """Drop the Redis connections (the in-process storage holds none)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    async def _hit(self, item: RateLimitItem, amount: int, *key: str) -> bool:
        if amount > item.amount:
            # More than the whole bucket holds can never be admitted: refuse without
            # emptying it (the limiter would refuse too, and say so forever).
            return False
        try:
            return await self.limiter.hit(item, *key, cost=amount)
        except Exception as error:
            log.warning("rate limit storage unavailable: %s", type(error).__name__)
            return True

    async def _quota(self, item: RateLimitItem, *key: str) -> Quota | None:
        try:
            stats = await self.limiter.get_window_stats(item, *key)
        except Exception as error:
            log.warning("rate limit storage unavailable: %s", type(error).__name__)
            return None
        return Quota(
            limit=item.amount,
            remaining=max(0, int(stats.remaining)),
            reset_seconds=max(0, math.ceil(stats.reset_time - time.time())),
            window_seconds=item.get_expiry(),
        )


class Admission:
    """One request's dealings with the rate limits: what its operation was charged, and
    the refusal if a bucket was empty (the edge then answers 429 and rolls back)."""

    def __init__(self, limits: RateLimits | None, principal: Principal) -> None:
        self.limits = limits
        self.key = principal_key(principal.subject, principal.api_key_id)
        self.quota: Quota | None = None
        self.refused: RateLimited | None = None
        # The operation's static cost once known (the request's log line reports it).
        self.cost: int | None = None

    async def admit(self, cost: int, lookups: int) -> CustosError | None:
        self.cost = cost
        if self.limits is None:
            return None
        self.quota, self.refused = await self.limits.charge(self.key, cost, lookups)
        return self.refused

    def raise_refusal(self) -> None:
        if self.refused is not None:
            raise too_many(self.refused)

    def headers(self) -> dict[str, str]:
        return self.quota.headers() if self.quota is not None else {}


def too_many(refused: RateLimited) -> HttpProblem:
    return HttpProblem(429, refused.message, refused.code, refused.headers())


def storage_uri(redis_url: str | None) -> str:
    """The `limits` storage: in this process, or the Redis at `CUSTOS_REDIS_URL`."""
    if not redis_url:
        return "async+memory://"
    if redis_url.startswith(("redis://", "rediss://", "unix://")):
        return "async+" + redis_url
    return redis_url


def principal_key(subject: str, api_key_id: object | None) -> str:
    """One bucket per API key, one per subject otherwise."""
    return f"apikey:{api_key_id}" if api_key_id else f"subject:{subject}"
