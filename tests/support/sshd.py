"""A real OpenSSH server on loopback, for the print-vendor SFTP drop tests. (No tests here.)

Each server is Debian's ``sshd`` with its own configuration, host key and authorized key in a
temporary folder, started in the foreground (``sshd -D -e``) as a child of the test process: the
SFTP subsystem is OpenSSH's ``internal-sftp``, the same code a vendor's OpenSSH drop runs. The
client side gets a fresh key pair and a ``known_hosts`` line for the server's address and port.
Tests skip when ``sshd`` is not installed, unless EOB_REQUIRE_SSHD=1 (CI), where they fail.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import pytest

from tests.support.postfix import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


def sshd_available() -> bool:
    return os.path.exists(SSHD) and os.path.exists(SSH_KEYGEN)


# CI installs openssh-server (.ci/system-packages.txt) and sets EOB_REQUIRE_SSHD=1: there the SFTP
# tests run or fail, never skip.
requires_sshd = pytest.mark.skipif(
    not sshd_available() and os.environ.get("EOB_REQUIRE_SSHD") != "1",
    reason="needs OpenSSH's sshd (Debian package openssh-server, listed in .ci/system-packages.txt)")


def keygen(path: Path, comment: str) -> str:
    """A new passphrase-less ed25519 key pair at ``path``; returns the public key line."""
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshServer:
    """One ``sshd`` listening on ``host:port`` that lets ``user`` in with ``client_key`` only.

    ``known_hosts``: a file holding the server's host key for ``[host]:port``, as a client that
    has verified the vendor's fingerprint would have it. ``url(path)``: an ``sftp://`` URL.
    """

    host: str = "127.0.0.90"
    user: str = field(default_factory=getpass.getuser)
    port: int = 0
    root: Path = field(init=False)
    client_key: Path = field(init=False)
    known_hosts: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: BinaryIO | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="eob-sshd-"))
        self.port = self.port or free_port(self.host)
        self.client_key = self.root / "client_ed25519"
        self.known_hosts = self.root / "known_hosts"

    def url(self, path: Path | str) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}{path}"

    def _config(self) -> str:
        return "\n".join([
            f"ListenAddress {self.host}:{self.port}",
            f"HostKey {self.root / 'host_ed25519'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AllowUsers {self.user}",
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ])

    def start(self) -> None:
        if not sshd_available():
            self.stop()
            raise RuntimeError(f"sshd is not installed ({SSHD}): apt-get install openssh-server, "
                               "or unset EOB_REQUIRE_SSHD to skip the SFTP tests")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        host_key = keygen(self.root / "host_ed25519", "eob-test-host")
        (self.root / "authorized_keys").write_text(keygen(self.client_key, "eob-test-client") + "\n")
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {host_key}\n")
        config = self.root / "sshd_config"
        config.write_text(self._config())
        self._log = (self.root / "sshd.log").open("wb")
        self._process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                         stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as conn:
                    if conn.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop(keep_log=True)
        raise RuntimeError(f"sshd did not answer on {self.host}:{self.port}\n{self.log()}")

    def stop(self, *, keep_log: bool = False) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if not keep_log:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> SshServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
