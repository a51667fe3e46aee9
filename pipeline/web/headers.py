"""Security headers on every response, set in one place.

The desk runs no JavaScript at all, so the content security policy allows no script of any
kind (nor frames, plugins, or forms posting elsewhere); styles come only from the desk's own
stylesheet. Pages may show member data (masked, but still about a member), so no browser or
proxy may keep a copy of them: `Cache-Control: no-store` on everything but the stylesheet.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
REPORT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox")
"""A compliance report the desk serves as written (the access review) keeps its own inline styles;
it still runs nothing, frames nothing and posts nothing."""
HSTS = "max-age=31536000; includeSubDomains"
STATIC_PREFIX = "/static/"


def security_headers(*, tls: bool, static: bool) -> list[tuple[bytes, bytes]]:
    """The headers for one response (`static`: the stylesheet, which may be cached)."""
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ("Cache-Control", "private, max-age=300" if static else "no-store"),
    ]
    if tls:
        headers.append(("Strict-Transport-Security", HSTS))
    return [(name.lower().encode(), value.encode()) for name, value in headers]


class SecurityHeaders:
    """ASGI middleware: adds the headers a response did not set itself (a served access
    review sets its own, looser, style policy)."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(tls=self.tls, static=scope["path"].startswith(STATIC_PREFIX))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in extra if name not in present]
            await send(message)

        await self.app(scope, receive, with_headers)
