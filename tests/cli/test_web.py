"""`eob web`: the support desk started from the command line, listening where the settings say."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from pipeline.cli.main import app


def test_help_names_the_options() -> None:
    result = CliRunner().invoke(app, ["web", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "support desk" in result.output and "--port" in result.output and "--tls-cert" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(tmp_path: Path, port: int, *args: str) -> tuple[httpx.Response | None, str]:
    """Start `eob web` with `args`, fetch its sign-in page, stop it: the page and its output."""
    env = {**os.environ, "EOB_ENVIRONMENT": "demo", "EOB_WORKSPACE": str(tmp_path),
           "EOB_WEB_PORT": str(port)}
    env.pop("EOB_WEB_TLS", None)
    scheme = "https" if "--tls-cert" in args else "http"
    server = subprocess.Popen([sys.executable, "-m", "pipeline.cli.main", "web", *args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 60, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = httpx.get(f"{scheme}://127.0.0.1:{port}/signin", timeout=2, verify=False)
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    return page, output


def test_it_serves_the_sign_in_page_on_the_configured_port(tmp_path: Path) -> None:
    port = _free_port()
    page, output = _serve(tmp_path, port)
    assert page is not None, f"the desk did not start: {output}"
    assert page.status_code == 200 and "Sign in" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "server" not in page.headers
    assert "strict-transport-security" not in page.headers
    assert f"support desk on http://127.0.0.1:{port}/" in output


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "desk.crt", folder / "desk.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_served_with_a_certificate_it_tells_browsers_to_keep_to_https(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    page, output = _serve(tmp_path, port, "--tls-cert", str(cert), "--tls-key", str(key))
    assert page is not None, f"the desk did not start: {output}"
    assert page.status_code == 200
    assert page.headers["strict-transport-security"].startswith("max-age=31536000")
    assert f"support desk on https://127.0.0.1:{port}/" in output


def test_a_production_start_with_the_shipped_secrets_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["web"], env={"EOB_ENVIRONMENT": "production",
                                                   "EOB_WORKSPACE": str(tmp_path), "COLUMNS": "200"})
    assert result.exit_code == 2 and "EOB_DESK_SECRET" in result.output
