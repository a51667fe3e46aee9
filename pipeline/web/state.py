"""What every request handler shares: settings, the stage context (ledger, clock), sessions,
the sign-in rate limiter and the page renderer, built once by `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from pipeline.settings import Settings
from pipeline.stages import Context
from pipeline.web.pages import Pages
from pipeline.web.ratelimit import SignInLimiter
from pipeline.web.sessions import SessionStore


@dataclass(frozen=True, slots=True)
class WebDesk:
    settings: Settings
    ctx: Context
    sessions: SessionStore
    limiter: SignInLimiter
    pages: Pages

    @property
    def secret(self) -> bytes:
        return self.settings.desk_secret.get_secret_value().encode()


def desk_of(request: Request) -> WebDesk:
    desk: WebDesk = request.app.state.desk
    return desk


def source_of(request: Request) -> str | None:
    """Where a request came from, for the audit log: the client's address (behind a proxy,
    the address uvicorn takes from the proxy's forwarded header, which it trusts only from
    the addresses it is told to)."""
    return request.client.host if request.client else None
