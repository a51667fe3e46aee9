"""A real Postfix relay on loopback, one per IP pool, for the relay tests. (No tests here.)

Each relay is its own Postfix instance (its own main.cf, master.cf and queue in a temporary
folder) started with Debian's ``postfix`` as root, the way an insurer's relay host runs it:
STARTTLS offered to the pipeline, the dedicated pool address bound for outbound connections
(``smtp_bind_address``), and the next hop reached over verified TLS. Delivery status
notifications the relay generates go, as they would through the bounce domain's MX, into a
Maildir that the pipeline's maildir feed reads. Tests skip when Postfix is not installed or
when not running as root (Postfix's master must start as root), unless EOB_REQUIRE_POSTFIX=1.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pytest

from pipeline.demo.smtp_sink import TlsMaterial

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"

_SERVICES = """\
{listen}pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_available() -> bool:
    return os.path.exists(POSTFIX) and os.geteuid() == 0


# CI installs Postfix and sets EOB_REQUIRE_POSTFIX=1: there the relay tests run or fail, never skip.
requires_postfix = pytest.mark.skipif(
    not postfix_available() and os.environ.get("EOB_REQUIRE_POSTFIX") != "1",
    reason="needs Debian's postfix package and root (listed in .ci/system-packages.txt)")


@dataclass
class PostfixRelay:
    """One Postfix instance listening on ``host:port``.

    ``tls=None``: the relay offers no STARTTLS. ``next_hop``/``next_hop_ca``/``next_hop_name``:
    where it relays everything (``relayhost``), over TLS verified against that CA and name.
    ``bind_address``: the pool's dedicated address its outbound connections come from.
    ``bounce_domain``/``bounce_maildir``: DSNs to that domain are delivered into the Maildir.
    ``settings``: further main.cf lines (``message_size_limit``, ``maximal_queue_lifetime``...).
    ``extra_main``/``extra_master``: fragments appended to main.cf and master.cf (the pools'
    listeners and transports of `eob relay-config postfix`); ``port=0``: no listener of its own,
    ``listeners`` are the addresses to wait for instead.
    """

    name: str
    host: str
    port: int
    next_hop: tuple[str, int]
    next_hop_ca: Path
    next_hop_name: str
    bounce_domain: str
    bounce_maildir: Path
    tls: TlsMaterial | None = None
    bind_address: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    extra_main: str = ""
    extra_master: str = ""
    listeners: tuple[tuple[str, int], ...] = ()
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"eob-postfix-{self.name}-"))
        self.root.chmod(0o755)  # Postfix's daemons run as the postfix user

    # -- configuration ---------------------------------------------------------------------

    def _main_cf(self) -> str:
        owner = pwd.getpwnam("postfix")
        hop_host, hop_port = self.next_hop
        hop = f"[{hop_host}]:{hop_port}"
        lines = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "maillog_file": str(self.root / "maillog"),
            "maillog_file_prefixes": str(self.root),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": f"{self.name}.relay.eob.test",
            "mydomain": "relay.eob.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:local delivery is disabled",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "loopback-only",  # the listener's own address is in master.cf
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relayhost": hop,
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "secure",
            "smtp_tls_CAfile": str(self.next_hop_ca),
            "smtp_tls_policy_maps": f"inline:{{ {{ {hop} = secure match={self.next_hop_name} }} }}",
            "smtp_tls_loglevel": "1",
            "smtpd_tls_security_level": "may" if self.tls else "none",
            "virtual_mailbox_domains": self.bounce_domain,
            "virtual_mailbox_base": str(self.bounce_maildir.parent),
            "virtual_mailbox_maps": f"static:{self.bounce_maildir.name}/",
            "virtual_uid_maps": f"static:{owner.pw_uid}",
            "virtual_gid_maps": f"static:{owner.pw_gid}",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
            "biff": "no",
        }
        if self.tls:
            lines |= {"smtpd_tls_cert_file": str(self.tls.cert_file),
                      "smtpd_tls_key_file": str(self.tls.key_file)}
        if self.bind_address:
            lines["smtp_bind_address"] = self.bind_address
        lines |= self.settings
        return "".join(f"{key} = {value}\n" for key, value in lines.items())

    def _write_config(self) -> None:
        (self.root / "main.cf").write_text(self._main_cf() + self.extra_main)
        own = f"{self.host}:{self.port} inet n - n - - smtpd\n" if self.port else ""
        (self.root / "master.cf").write_text(_SERVICES.format(listen=own) + self.extra_master)

    # -- lifecycle -------------------------------------------------------------------------

    def _postfix(self, *args: str) -> None:
        done = subprocess.run([POSTFIX, "-c", str(self.root), *args], capture_output=True,
                              text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)} failed (exit {done.returncode}): "
                               f"{done.stderr} {done.stdout}\n{self.log()}")

    def start(self) -> None:
        self._write_config()
        (self.root / "queue").mkdir(exist_ok=True)
        self._postfix("check")  # creates the queue's folders with Postfix's owners and modes
        self._postfix("start")
        for host, port in self.listeners or ((self.host, self.port),):
            self._wait_for_greeting(host, port)

    def _wait_for_greeting(self, host: str, port: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((host, port), timeout=1) as conn:
                    if conn.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix {self.name} did not answer on {host}:{port}\n{self.log()}")

    def stop(self) -> None:
        subprocess.run([POSTFIX, "-c", str(self.root), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostfixRelay:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- what happened ---------------------------------------------------------------------

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def queue_is_empty(self) -> bool:
        done = subprocess.run([POSTQUEUE, "-c", str(self.root), "-j"], capture_output=True,
                              text=True, timeout=30)
        return done.returncode == 0 and not done.stdout.strip()

    def flush(self) -> None:
        subprocess.run([POSTQUEUE, "-c", str(self.root), "-f"], capture_output=True, timeout=30)


def free_port(host: str) -> int:
    """A port nobody listens on at ``host`` (Postfix's master.cf needs a number, not 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def bounce_mailbox() -> Path:
    """A Maildir the relays' virtual delivery agent (running as the postfix user) can write and
    the pipeline's maildir feed can read: the bounce domain's mailbox."""
    owner = pwd.getpwnam("postfix")
    base = Path(tempfile.mkdtemp(prefix="eob-bounces-"))
    base.chmod(0o755)
    maildir = base / "maildir"
    for part in ("", "tmp", "new", "cur"):
        (maildir / part).mkdir(exist_ok=True)
    for path in (base, maildir, maildir / "tmp", maildir / "new", maildir / "cur"):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return maildir


def wait_for(condition: Callable[[], bool], what: str, *, timeout: float = 30.0,
             relays: tuple[PostfixRelay, ...] = ()) -> None:
    """Poll until ``condition()`` holds; on timeout fail with the relays' mail logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {relay.name} ---\n{relay.log()[-4000:]}" for relay in relays)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")
