"""The bounce mailbox as a Maildir: the embedded default, and what Postfix/Dovecot deliver to."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.reconcile.feeds.items import RFC822, FeedItem

SET_ASIDE_FOLDER = "set-aside"


class MaildirFeed:
    """new/ holds what is still to do; `done` moves a message to cur/ flagged Seen (as a mail
    client would), `set_aside` to the `.set-aside` sub-folder for an operator to look at."""

    name = "maildir"
    message_id_correlation = False  # anyone can mail the bounce mailbox: signed tokens only

    def __init__(self, root: Path, *, message_id_correlation: bool | None = None) -> None:
        self.root = root
        if message_id_correlation is not None:
            self.message_id_correlation = message_id_correlation
        mailbox.Maildir(str(root), create=True)  # makes new/, cur/ and tmp/ when missing

    def fetch(self, limit: int) -> Iterator[FeedItem]:
        for name in sorted(os.listdir(self.root / "new"))[:limit]:
            if name.startswith("."):
                continue
            try:
                data = (self.root / "new" / name).read_bytes()
            except FileNotFoundError:  # another reconcile run took it meanwhile
                continue
            yield FeedItem(self.name, name, data, RFC822)

    def done(self, item: FeedItem) -> None:
        self._move(item.ref, self.root / "cur")

    def set_aside(self, item: FeedItem, reason: str) -> None:
        mailbox.Maildir(str(self.root), create=False).add_folder(SET_ASIDE_FOLDER)
        self._move(item.ref, self.root / f".{SET_ASIDE_FOLDER}" / "cur")

    def _move(self, name: str, to: Path) -> None:
        source = self.root / "new" / name
        if source.exists():
            os.replace(source, to / f"{name}:2,S")

    def close(self) -> None:
        return None
