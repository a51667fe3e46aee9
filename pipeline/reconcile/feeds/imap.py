"""The bounce mailbox over IMAP: TLS always (implicit or STARTTLS), never a plaintext login.

Messages are read with BODY.PEEK[] (reading does not change them) and, once reconcile has
recorded them, moved to a "processed" folder (MOVE, or COPY + \\Deleted + EXPUNGE on servers
without it); unreadable ones go to a "set aside" folder. Only UIDs and counts are logged.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

from pipeline.reconcile.feeds.items import RFC822, FeedError, FeedItem

log = logging.getLogger(__name__)

_TIMEOUT = 30.0


class ImapFeed:
    name = "imap"
    message_id_correlation = False  # anyone can mail the bounce mailbox: signed tokens only

    def __init__(self, host: str, port: int, *, user: str, password: str, folder: str = "INBOX",
                 implicit_tls: bool = True, ca_file: Path | None = None,
                 processed_folder: str = "EOB-Processed", set_aside_folder: str = "EOB-SetAside",
                 timeout: float = _TIMEOUT, message_id_correlation: bool | None = None) -> None:
        self.host, self.port, self.folder = host, port, folder
        if message_id_correlation is not None:
            self.message_id_correlation = message_id_correlation
        self._user, self._password = user, password
        self._implicit_tls = implicit_tls
        self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.processed_folder, self.set_aside_folder = processed_folder, set_aside_folder
        self._timeout = timeout
        self._conn: imaplib.IMAP4 | None = None

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> imaplib.IMAP4:
        if self._conn is not None:
            return self._conn
        try:
            if self._implicit_tls:
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self._tls,
                                                        timeout=self._timeout)
            else:
                conn = imaplib.IMAP4(self.host, self.port, timeout=self._timeout)
                if "STARTTLS" not in conn.capabilities:
                    conn.shutdown()
                    raise FeedError(f"IMAP server {self.host} offers no STARTTLS; refusing to log in")
                conn.starttls(ssl_context=self._tls)
            conn.login(self._user, self._password)
            for folder in (self.processed_folder, self.set_aside_folder):
                conn.create(_quote(folder))  # "already exists" is a NO, which is fine
            status, _ = conn.select(_quote(self.folder))
            if status != "OK":
                raise FeedError(f"IMAP folder {self.folder!r} cannot be selected")
        except (imaplib.IMAP4.error, OSError, ssl.SSLError) as exc:
            # the server's reply may echo the login name: say what failed, not what it said
            raise FeedError(f"IMAP {self.host}:{self.port}: {type(exc).__name__}") from None
        self._conn = conn
        return conn

    def fetch(self, limit: int) -> Iterator[FeedItem]:
        conn = self._connect()
        status, data = conn.uid("SEARCH", "ALL")
        if status != "OK":
            raise FeedError("IMAP SEARCH failed")
        uids = [u.decode() for u in (data[0] or b"").split()[:limit]]
        for uid in uids:
            status, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
            if status != "OK" or not isinstance(raw, bytes):
                log.warning("imap: message uid %s could not be fetched", uid)
                continue
            yield FeedItem(self.name, uid, raw, RFC822)

    def done(self, item: FeedItem) -> None:
        self._move(item.ref, self.processed_folder)

    def set_aside(self, item: FeedItem, reason: str) -> None:
        self._move(item.ref, self.set_aside_folder)

    def _move(self, uid: str, folder: str) -> None:
        conn = self._connect()
        if "MOVE" in conn.capabilities:
            status, _ = conn.uid("MOVE", uid, _quote(folder))
        else:
            status, _ = conn.uid("COPY", uid, _quote(folder))
            if status == "OK":
                conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()
        if status != "OK":
            raise FeedError(f"IMAP could not move uid {uid} to {folder!r}")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                self._conn.logout()
            self._conn = None


def _quote(folder: str) -> str:
    """Folder names with spaces need IMAP quoting; simple ones go as they are."""
    return folder if re.fullmatch(r"[A-Za-z0-9._/-]+", folder) else '"' + folder.replace('"', r"\"") + '"'
