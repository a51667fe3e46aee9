"""The demo's loopback SMTP relays as one managed process of the cluster.

`python -m pipeline.cluster.relays --dir D` starts one `pipeline.demo.smtp_sink` server per
relay of the cluster's pools (STARTTLS required, a certificate from a CA made at start into
`D/tls/`, the demo's behaviour: some refusals, some DSNs into the workspace's bounce Maildir),
and records every message it accepts: one line per message in `D/relays/received.jsonl` (pool,
time, TLS, the statement id header and the Message-ID; never an address) and the running count
per pool in `D/relays/counts.json`, which `eob cluster run` and the tests reconcile with the
ledger. The journal tells a statement received twice (a resend after a sender died in flight)
from two statements: `relay_journal`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2


def counts_file(directory: Path) -> Path:
    return directory / "relays" / "counts.json"


def journal_file(directory: Path) -> Path:
    return directory / "relays" / "received.jsonl"


def relay_journal(directory: Path) -> list[dict[str, Any]]:
    """Every message the relays accepted, in order: pool, at, tls, statement, message_id. Read it
    after `settled_relay_counts` so that nothing accepted before then is missing; a line being
    written at that moment (no newline yet) is left out."""
    try:
        text = journal_file(directory).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def relay_counts(directory: Path) -> dict[str, int]:
    """Messages accepted so far per pool, as the relays process last wrote them ({} before)."""
    try:
        return {str(k): int(v) for k, v in json.loads(counts_file(directory).read_text())["pools"].items()}
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}


def settled_relay_counts(directory: Path, *, after: float, timeout: float = 10.0) -> dict[str, int]:
    """The counts as written after the wall-clock time `after` (the relays write every 0.2 s),
    so that nothing accepted before then is missed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads(counts_file(directory).read_text())
            if float(data["written_at"]) > after:
                return {str(k): int(v) for k, v in data["pools"].items()}
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(FLUSH_SECONDS)
    raise TimeoutError(f"the relays process has not written {counts_file(directory)} for "
                       f"{timeout:.0f} s: is it running? (`eob cluster status`)")


def _identity(data: bytes) -> dict[str, str]:
    """The statement id header and the Message-ID of a message (a resend carries the same)."""
    headers = BytesHeaderParser().parsebytes(data)
    return {"statement": str(headers.get("X-EOB-Statement", "")),
            "message_id": str(headers.get("Message-ID", ""))}


class _Recorder:
    """Appends each newly accepted message of each sink to the journal, and rewrites the counts."""

    def __init__(self, directory: Path, sinks: list[tuple[str, Any]]) -> None:
        self.directory = directory
        self.sinks = sinks
        self.seen = [0] * len(sinks)
        self.counts: dict[str, int] = {pool: 0 for pool, _ in sinks}
        self.journal = journal_file(directory).open("a", encoding="utf-8")

    def flush(self) -> None:
        for index, (pool, sink) in enumerate(self.sinks):
            fresh = sink.received[self.seen[index]:]
            self.seen[index] += len(fresh)
            self.counts[pool] += len(fresh)
            for message in fresh:
                self.journal.write(json.dumps({"pool": pool, "at": time.time(), "tls": message.tls,
                                               **_identity(message.data)}) + "\n")
        self.journal.flush()
        target = counts_file(self.directory)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps({"written_at": time.time(), "pools": self.counts}))
        temporary.replace(target)


def serve(directory: Path, stop: threading.Event) -> None:
    """Run the relays of the pools the environment's settings name until `stop` is set."""
    from contextlib import ExitStack

    from pipeline.delivery.pools import send_config
    from pipeline.demo.smtp_sink import SmtpSink, demo_behaviour, make_tls_material
    from pipeline.settings import Settings

    settings = Settings()
    relays = [(pool.name, relay) for pool in send_config(settings).pools for relay in pool.relays]
    hosts = sorted({relay.host for _, relay in relays})
    material = make_tls_material(directory / "tls", [*hosts, "localhost"])
    with ExitStack() as stack:
        sinks = [(name, stack.enter_context(SmtpSink(
            relay.host, relay.port, tls=material, require_tls=True, behaviour=demo_behaviour,
            maildir=settings.maildir, reporting_mta=f"mx-{name}.sink.example", keep_data=False)))
            for name, relay in relays]
        log.warning("relays listening: %s", ", ".join(f"{n} {r.host}:{r.port}" for n, r in relays))
        recorder = _Recorder(directory, sinks)
        while not stop.wait(FLUSH_SECONDS):
            recorder.flush()
        recorder.flush()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the cluster's loopback SMTP relays")
    parser.add_argument("--dir", type=Path, required=True, help="the cluster folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    (args.dir / "relays").mkdir(parents=True, exist_ok=True)
    serve(args.dir.resolve(), stop)


if __name__ == "__main__":  # pragma: no cover - run as a managed process by `eob cluster up`
    main()
