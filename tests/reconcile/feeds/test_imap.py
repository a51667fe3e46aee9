"""The IMAP feed against a real Dovecot server on loopback, over TLS (implicit and STARTTLS).

Needs the `dovecot` binary (Debian: dovecot-imapd, listed in .ci/system-packages.txt); the
tests skip with that reason when it is absent. Messages reach the mailbox by IMAP APPEND, as
any client would put them there.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from pipeline.reconcile.feeds import FeedError
from pipeline.reconcile.feeds.imap import ImapFeed
from pipeline.stages.reconcile import reconcile_stage
from tests.support.reconcile import add_sent, dsn, make_context, status_of

HOST = "127.0.0.85"
USER, PASSWORD = "bounces", "imap-test-password"
DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if Path(p).exists()), None)

pytestmark = pytest.mark.skipif(
    DOVECOT is None or os.geteuid() != 0,
    reason="needs Dovecot (apt-get install dovecot-imapd) and root to start it on loopback")


@dataclass(frozen=True)
class Imap:
    host: str
    starttls_port: int
    tls_port: int
    ca_file: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Imap]:
    # Dovecot's auth and mail processes run as `nobody`: pytest's private tmp (0700) is closed
    root = Path(tempfile.mkdtemp(prefix="eob-dovecot-"))
    os.chmod(root, 0o755)
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST, "localhost")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    nobody = pwd.getpwnam("nobody")
    home = root / "home"
    home.mkdir()
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    starttls_port, tls_port = _free_port(), _free_port()
    (root / "dovecot.conf").write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
ssl = required
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain
first_valid_uid = 1
default_login_user = nobody
default_internal_user = nobody
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/users
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {starttls_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {tls_port}
    ssl = yes
  }}
}}
""")
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection((HOST, tls_port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                process.kill()
                pytest.fail(f"dovecot did not start: {process.stderr.read()!r} {log[-2000:]}")
            time.sleep(0.1)
    yield Imap(HOST, starttls_port, tls_port, root / "ca.pem")
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)


def _append(imap: Imap, folder: str, *messages: bytes) -> None:
    context = ssl.create_default_context(cafile=str(imap.ca_file))
    with imaplib.IMAP4_SSL(imap.host, imap.tls_port, ssl_context=context) as conn:
        conn.login(USER, PASSWORD)
        conn.create(folder)
        for raw in messages:
            conn.append(folder, None, None, raw)


def _count(imap: Imap, folder: str) -> int:
    context = ssl.create_default_context(cafile=str(imap.ca_file))
    with imaplib.IMAP4_SSL(imap.host, imap.tls_port, ssl_context=context) as conn:
        conn.login(USER, PASSWORD)
        status, data = conn.select(folder, readonly=True)
        return int(data[0]) if status == "OK" else 0


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_bounces_over_imap_are_routed_and_moved_out_of_the_inbox(
        tmp_path: Path, dovecot: Imap, scheme: str) -> None:
    folder = f"Bounces-{scheme}"
    port = dovecot.tls_port if scheme == "imaps" else dovecot.starttls_port
    ctx = make_context(tmp_path, reconcile_feeds=[f"{scheme}://{USER}@{dovecot.host}:{port}/{folder}"],
                       reconcile_imap_password=PASSWORD, reconcile_imap_ca_file=dovecot.ca_file)
    add_sent(ctx, 1)
    add_sent(ctx, 2)
    _append(dovecot, folder, dsn(1), dsn(2, status="4.2.2", diagnostic="452 4.2.2 mailbox full"),
            b"From: x@example.org\r\nSubject: hello\r\n\r\n\x00\x01")
    result = reconcile_stage(ctx)
    assert result["routed_verify"] == 1 and result["routed_retry"] == 1
    assert (status_of(ctx, 1), status_of(ctx, 2)) == ("verification_pending", "retry_scheduled")
    assert _count(dovecot, folder) == 0
    assert _count(dovecot, "EOB-Processed") >= 2
    assert reconcile_stage(ctx) == {"messages": 0}


def test_a_wrong_password_or_an_untrusted_certificate_fails_without_echoing_secrets(dovecot: Imap) -> None:
    bad = ImapFeed(dovecot.host, dovecot.tls_port, user=USER, password="wrong", folder="INBOX",
                   ca_file=dovecot.ca_file)
    with pytest.raises(FeedError) as refused:
        list(bad.fetch(10))
    assert "wrong" not in str(refused.value)
    untrusted = ImapFeed(dovecot.host, dovecot.tls_port, user=USER, password=PASSWORD, folder="INBOX")
    with pytest.raises(FeedError, match="SSL"):
        list(untrusted.fetch(10))
