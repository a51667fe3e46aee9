"""aiosmtpd's SMTP server with a message's DATA read in blocks, for the loopback relays.

aiosmtpd reads DATA one line at a time, about 800 awaits for a statement's message: that made
the demo's relays, which stand in for MTAs on other hosts, cost more CPU than the sender they
receive from. The content kept and the replies given are the same.
"""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import MISSING, SMTP

__all__ = ["BlockDataSMTP", "read_data"]


_END_OF_DATA = b"\n.\r\n"  # with the CR before it: a lone dot on a line ends DATA


async def read_data(reader: asyncio.StreamReader) -> bytes:
    """The bytes of one DATA section up to the lone dot, dot-stuffing undone (RFC 5321 4.5.2),
    read in blocks. Nothing past the terminating dot is consumed, so pipelined commands stay in
    ``reader``. Lines end in CRLF only; a bare LF before a dot does not end the data."""
    raw = bytearray(await reader.readexactly(1))
    if raw == b".":
        rest = await reader.readexactly(2)
        if rest == b"\r\n":
            return b""  # no content at all
        raw += rest
    while True:
        try:
            raw += await reader.readuntil(_END_OF_DATA)
        except asyncio.LimitOverrunError as error:  # a block without the terminator: keep it
            raw += await reader.readexactly(error.consumed)
            continue
        if raw[-5:-4] == b"\r":
            break
    body = bytes(raw[:-3])  # the last line's CRLF is content; ".\r\n" is not
    if body.startswith(b"."):
        body = body[1:]
    return body.replace(b"\r\n.", b"\r\n")


class BlockDataSMTP(SMTP):
    """aiosmtpd's SMTP server with DATA read in blocks (`read_data`); replies are unchanged.

    Content over ``data_size_limit`` is refused with aiosmtpd's 552; its 500 for a line over
    1,000 bytes is not given (this server is a test relay, not a conformance checker).
    """

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content = await read_data(self._reader)
        except asyncio.CancelledError:  # the connection went away during DATA
            self._writer.close()
            raise
        if self.data_size_limit and len(content) > self.data_size_limit:
            self._set_post_data_state()
            await self.push("552 Error: Too much mail data")
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)
