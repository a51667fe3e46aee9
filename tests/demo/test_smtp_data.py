"""The loopback sink reads DATA in blocks: the bytes it keeps must be the bytes the client meant."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import aiosmtplib
import pytest

from pipeline.demo.smtp_data import read_data
from pipeline.demo.smtp_sink import SmtpSink, make_tls_material


def _read(wire: bytes, *, limit: int = 16) -> tuple[bytes, bytes]:
    """What read_data returns for ``wire``, and what it leaves in the stream after it."""

    async def run() -> tuple[bytes, bytes]:
        reader = asyncio.StreamReader(limit=limit)  # a small limit: the block path is taken
        reader.feed_data(wire)
        reader.feed_eof()
        return await read_data(reader), await reader.read()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("wire", "content"),
    [
        (b".\r\n", b""),
        (b"\r\n.\r\n", b"\r\n"),
        (b"a\r\n.\r\n", b"a\r\n"),
        (b"Subject: x\r\n\r\nbody\r\n.\r\n", b"Subject: x\r\n\r\nbody\r\n"),
        (b"..leading\r\n.\r\n", b".leading\r\n"),  # a stuffed first line
        (b"x\r\n..\r\n...\r\ny\r\n.\r\n", b"x\r\n.\r\n..\r\ny\r\n"),  # stuffed dots mid-way
        (b"x\n.\r\ny\r\n.\r\n", b"x\n.\r\ny\r\n"),  # a bare LF before a dot ends nothing
        (b".x\r\n.\r\n", b"x\r\n"),
    ],
)
def test_read_data_undoes_dot_stuffing_and_stops_at_the_lone_dot(wire: bytes, content: bytes) -> None:
    assert _read(wire + b"QUIT\r\n") == (content, b"QUIT\r\n")


def test_a_long_body_read_in_blocks_is_kept_whole() -> None:
    lines = [os.urandom(30).hex().encode() for _ in range(2_000)]
    body = b"\r\n".join(lines) + b"\r\n"
    assert _read(body + b".\r\nMAIL FROM:<a@b>\r\n", limit=1001) == (body, b"MAIL FROM:<a@b>\r\n")


def test_the_sink_keeps_the_exact_message_a_client_sent(tmp_path: Path) -> None:
    """Over real SMTP with STARTTLS: dots at line starts, a long attachment, pipelined sends."""
    material = make_tls_material(tmp_path / "tls", ["127.0.0.61"])
    messages = [
        b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n",
        b"Subject: big\r\n\r\n" + b"\r\n".join(os.urandom(38).hex().encode() for _ in range(3_000)) + b"\r\n",
        b"Subject: short\r\n\r\nx\r\n",
    ]

    async def send(port: int) -> None:
        context = ssl.create_default_context(cafile=str(material.ca_file))
        client = aiosmtplib.SMTP(hostname="127.0.0.61", port=port, tls_context=context, start_tls=True)
        async with client:
            for message in messages:
                await client.sendmail("from@eob.example", ["to@example.org"], message)

    with SmtpSink("127.0.0.61", 0, tls=material) as sink:
        asyncio.run(send(sink.port))
        received = [item.data for item in sink.received]
    assert received == messages
