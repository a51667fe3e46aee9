"""`eob web`: the support desk in a browser (uvicorn serving pipeline.web)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def web(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default EOB_WEB_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default EOB_WEB_PORT)")] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        help="Serve HTTPS directly with this certificate chain (PEM); HSTS is then sent")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM)")] = None,
    forwarded_allow_ips: Annotated[str, typer.Option(
        help="Addresses of the TLS proxy in front, trusted for X-Forwarded-For/-Proto (the client "
             "address in the audit log)")] = "127.0.0.1",
) -> None:
    """Start the support desk web app: sign in, search, statement timelines, actions, audit."""
    import uvicorn

    from pipeline.settings import Settings
    from pipeline.stages import NeedsOperator
    from pipeline.web import create_app

    settings = Settings()
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give --tls-cert and --tls-key together")
    if tls_cert is not None and not settings.web_tls:
        # served over HTTPS here: browsers are told to keep to it (HSTS), as behind a TLS proxy
        settings = settings.model_copy(update={"web_tls": True})
    bind, listen = host or settings.web_host, port or settings.web_port
    try:
        app = create_app(settings)
    except NeedsOperator as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    scheme = "https" if tls_cert else "http"
    if scheme == "http" and bind not in LOOPBACK:
        console.print("[yellow]The desk's cookies are Secure: browsers keep them over HTTPS or on "
                      "this machine's loopback address only. Put a TLS proxy in front (and set "
                      "EOB_WEB_TLS=true), or pass --tls-cert and --tls-key.[/]")
    console.print(f"support desk on {scheme}://{bind}:{listen}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=bind, port=listen, proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips, server_header=False,
                ssl_certfile=str(tls_cert) if tls_cert else None,
                ssl_keyfile=str(tls_key) if tls_key else None)
