"""Optional DKIM signing of outgoing statements (dkimpy), applied to the bytes on the wire.

Gmail and Yahoo require bulk senders to authenticate (SPF or DKIM aligned with From, plus
DMARC); an insurer's relay often signs for us, and then this stays off. When the relay does
not, the sender signs each serialized message just before DATA, so the signature covers
exactly what is transmitted. Only structural headers are signed; none of them carries PHI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dkim

log = logging.getLogger(__name__)

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version", b"Content-Type",
    b"X-EOB-Statement", b"Auto-Submitted",
)


class DkimError(ValueError):
    """The DKIM key or its settings are unusable; nothing is sent unsigned by surprise."""


@dataclass(frozen=True, slots=True)
class DkimSigner:
    domain: str
    selector: str
    private_key: bytes = field(repr=False)

    def __call__(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header prepended (relaxed/simple, rsa-sha256)."""
        try:
            header = dkim.sign(message, self.selector.encode(), self.domain.encode(),
                               self.private_key, canonicalize=(b"relaxed", b"simple"),
                               include_headers=list(SIGNED_HEADERS), linesep=b"\r\n")
        except dkim.DKIMException as exc:
            raise DkimError(f"DKIM signing failed for d={self.domain}: {type(exc).__name__}") \
                from None
        return header + message


def load_signer(
    domain: str | None, selector: str | None, key_file: Path | None
) -> Callable[[bytes], bytes] | None:
    """A signer when all three settings are given, None when none is; half a config fails."""
    given = [v is not None for v in (domain, selector, key_file)]
    if not any(given):
        return None
    if not all(given):
        raise DkimError("DKIM needs EOB_DKIM_DOMAIN, EOB_DKIM_SELECTOR and EOB_DKIM_KEY_FILE")
    assert domain is not None and selector is not None and key_file is not None
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise DkimError(f"cannot read the DKIM key file {key_file}: {exc.strerror}") from None
    if b"PRIVATE KEY" not in key:
        raise DkimError(f"{key_file} is not a PEM private key")
    return DkimSigner(domain, selector, key)
