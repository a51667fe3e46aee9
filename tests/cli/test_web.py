"""`eob web`: the support desk started from the command line, listening where the settings say."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from pipeline.cli.main import app


def test_help_names_the_options() -> None:
    result = CliRunner().invoke(app, ["web", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "support desk" in result.output and "--port" in result.output and "--tls-cert" in result.output


def test_it_serves_the_sign_in_page_on_the_configured_port(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "EOB_ENVIRONMENT": "demo", "EOB_WORKSPACE": str(tmp_path),
           "EOB_WEB_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "pipeline.cli.main", "web"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 60, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/signin", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None, "the desk did not start"
        assert page.status_code == 200 and "Sign in" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert "server" not in page.headers
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert f"support desk on http://127.0.0.1:{port}/" in output


def test_a_production_start_with_the_shipped_secrets_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["web"], env={"EOB_ENVIRONMENT": "production",
                                                   "EOB_WORKSPACE": str(tmp_path), "COLUMNS": "200"})
    assert result.exit_code == 2 and "EOB_DESK_SECRET" in result.output
