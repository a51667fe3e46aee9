"""Benchmark the sender: unthrottled throughput against a bare aiosmtplib loop, and limiter accuracy.

The receiving SMTP server (aiosmtpd with STARTTLS, `python -m pipeline.demo.smtp_sink`) runs in its
own process, so it does not compete with the sender for this process's core; the machine may
still be shared with other work, so each throughput figure is the median of alternating runs.

1. Throughput: the same pre-built messages (40 KB attachment) sent over verified STARTTLS from
   the same source address with the same number of connections, once by `send_pool` (provider
   lanes, pacing machinery, per-message results; no limit binding) and once by a bare loop of
   `aiosmtplib` MAIL/RCPT/DATA calls on long-lived connections. Reported as messages/s (wall) and
   messages per CPU-second of this process (the sender is one event loop: one core).
2. Limiter accuracy: two pools paced at different rates send at the same time, each in its own
   process as Airflow's mapped send tasks would, for 60 s (10 s with --quick); the rate each
   achieved is measured at the server from the arrival of the first to the last message of
   that pool's source address.

The last line is a key=value summary:
  ratio=… (wall-clock, ours / bare) cpu_ratio=… (messages per CPU-second, ours / bare)
  ours_per_s=… bare_per_s=… ours_per_cpu_s=… bare_per_cpu_s=… rate_error_pct=… …

    .venv/bin/python bench/send.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosmtplib  # noqa: E402

from pipeline.delivery import Outgoing, SendResult, make_tls_context, send_pool  # noqa: E402
from pipeline.delivery.message import build_message, render_email  # noqa: E402
from pipeline.delivery.pools import PoolConfig, ProviderLimit, Relay  # noqa: E402
from pipeline.delivery.verp import return_path  # noqa: E402
from pipeline.demo.smtp_sink import SinkProcess  # noqa: E402

RELAY = "127.0.0.56"
SOURCES = {"throughput": "127.0.0.45", "pool_a": "127.0.0.46", "pool_b": "127.0.0.47"}
CONNECTIONS = 4
ATTACHMENT = 40_000
RATES = {"pool_a": 40.0, "pool_b": 25.0}


def build_messages(n: int, tag: str) -> list[Outgoing]:
    content = render_email(language="en", context={
        "support_phone": "1-800-555-0199", "password_hint": "your date of birth",
        "brand_name": "Acme Health", "period_label": "November 2026"})
    pdf = b"%PDF-2.0\n" + os.urandom(ATTACHMENT) + b"\n%%EOF\n"
    items = []
    for i in range(n):
        sid = f"st-2026-11-{tag}{i:08x}"
        envelope = return_path(sid, "bench-secret", "bounces.eob.example")
        recipient = f"member{i}@example.org"
        items.append(Outgoing(sid, recipient, envelope, build_message(
            statement_id=sid, recipient=recipient, from_address="statements@eob.example",
            from_name="Member Statements", envelope_from=envelope, message_id_domain="eob.example",
            content=content, pdf=pdf, pdf_filename="EOB-2026-11.pdf")))
    return items


def pool(name: str, server: SinkProcess, rate: float) -> PoolConfig:
    lane = ProviderLimit(max_connections=CONNECTIONS, messages_per_connection=100,
                         max_per_second=None)
    return PoolConfig(name=name, source_ips=(SOURCES.get(name, SOURCES["throughput"]),),
                      relays=(Relay(host=RELAY, port=server.port),), max_per_second=rate,
                      max_connections=CONNECTIONS, messages_per_connection=100,
                      providers={"default": lane})


def timed(run: Callable[[], int]) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    sent = run()
    return sent, time.perf_counter() - wall, time.process_time() - cpu


def ours(server: SinkProcess, items: list[Outgoing]) -> int:
    results: list[SendResult] = []
    stats = send_pool(pool("throughput", server, 1e6), items, results.append,
                      tls_context=make_tls_context(server.ca_file),
                      ehlo_hostname="mailer.eob.example", timeout=30.0)
    return stats.accepted


def bare(server: SinkProcess, items: list[Outgoing]) -> int:
    """The tightest correct loop: N verified STARTTLS connections, MAIL/RCPT/DATA in a row.

    The same calls as the sender makes (`sendmail` would add a line-ending pass over every
    message to compute SIZE, which flatters the comparison), the same serialization."""
    context = make_tls_context(server.ca_file)

    queue = iter(items)  # shared: a connection that is ahead takes more (as send_pool does)

    async def connection() -> int:
        smtp = aiosmtplib.SMTP(hostname=RELAY, port=server.port, start_tls=True,
                               tls_context=context, source_address=(SOURCES["throughput"], 0),
                               local_hostname="mailer.eob.example", timeout=30.0)
        await smtp.connect()
        sent = 0
        for item in queue:
            data = item.message.as_bytes(policy=email.policy.SMTP)
            await smtp.mail(item.envelope_from, options=[f"SIZE={len(data)}"])
            await smtp.rcpt(item.recipient)
            await smtp.data(data)
            sent += 1
        await smtp.quit()
        return sent

    async def main() -> int:
        return sum(await asyncio.gather(*(connection() for _ in range(CONNECTIONS))))

    return asyncio.run(main())


def throughput(server: SinkProcess, n: int, repeats: int) -> dict[str, float]:
    items = build_messages(n, "tp")
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "bare": []}
    for repeat in range(repeats):
        order = ("bare", "ours") if repeat % 2 == 0 else ("ours", "bare")
        for name in order:
            server.reset()
            sent, wall, cpu = timed(lambda name=name: (ours if name == "ours" else bare)(
                server, items))
            got = len(server.received())
            if sent != n or got != n:
                raise RuntimeError(f"{name}: sent {sent}, server received {got}, expected {n}")
            runs[name].append((n / wall, n / cpu))
            print(f"  {name:4s} run {repeat + 1}: {n / wall:7.1f} msg/s wall, "
                  f"{n / cpu:7.1f} msg per CPU-second")
    result = {}
    for name, values in runs.items():
        result[f"{name}_per_s"] = statistics.median(v[0] for v in values)
        result[f"{name}_per_cpu_s"] = statistics.median(v[1] for v in values)
    result["ratio"] = result["ours_per_s"] / result["bare_per_s"]
    result["cpu_ratio"] = result["ours_per_cpu_s"] / result["bare_per_cpu_s"]
    return result


def pool_child(name: str, seconds: float, port: int, ca_file: Path) -> None:
    """One pool's send task, as Airflow runs it: a process of its own."""
    n = int(RATES[name] * seconds) + 1
    config = PoolConfig(name=name, source_ips=(SOURCES[name],), relays=(Relay(host=RELAY,
                        port=port),), max_per_second=RATES[name], max_connections=CONNECTIONS,
                        messages_per_connection=100, providers={"default": ProviderLimit(
                            max_connections=CONNECTIONS, max_per_second=None)})
    results: list[SendResult] = []
    stats = send_pool(config, build_messages(n, name[-1] * 2), results.append,
                      tls_context=make_tls_context(ca_file), ehlo_hostname="mailer.eob.example",
                      timeout=30.0)
    if stats.accepted != n:
        raise SystemExit(f"{name}: {stats.accepted} of {n} accepted")


def accuracy(server: SinkProcess, seconds: float) -> dict[str, float]:
    """Each pool in its own process at the same time (one mapped send task per pool)."""
    server.reset()
    children = [subprocess.Popen([sys.executable, __file__, "--pool-child", name, str(seconds),
                                  str(server.port), str(server.ca_file)]) for name in RATES]
    for child in children:
        if child.wait() != 0:
            raise RuntimeError("a pool's send process failed")
    received = server.received()
    result: dict[str, float] = {}
    worst = 0.0
    for name, rate in RATES.items():
        starts = sorted(at for at, peer, _ in received if peer == SOURCES[name])
        achieved = (len(starts) - 1) / (starts[-1] - starts[0])
        error = abs(achieved - rate) / rate * 100
        worst = max(worst, error)
        busiest = max(sum(1 for u in starts if t <= u < t + 1.0) for t in starts)
        print(f"  {name}: configured {rate:.1f}/s achieved {achieved:.2f}/s "
              f"({error:.2f}% off) over {starts[-1] - starts[0]:.1f}s, {len(starts)} messages, "
              f"busiest second {busiest}")
        result[f"{name}_rate"] = achieved
    result["rate_error_pct"] = worst
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 30 s in all)")
    parser.add_argument("--pool-child", nargs=4, metavar=("POOL", "SECONDS", "PORT", "CA"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pool_child:
        name, seconds, port, ca = args.pool_child
        pool_child(name, float(seconds), int(port), Path(ca))
        return
    n, repeats, seconds = (400, 3, 10.0) if args.quick else (1500, 5, 60.0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        server = SinkProcess(RELAY, Path(tmp) / "tls")
        try:
            print(f"throughput: {n} messages with a {ATTACHMENT // 1000} KB attachment, "
                  f"{CONNECTIONS} connections, STARTTLS, server in its own process "
                  f"(median of {repeats} alternating runs; cores shared: expect noise)")
            figures = throughput(server, n, repeats)
            print(f"  ours {figures['ours_per_s']:.1f}/s vs bare {figures['bare_per_s']:.1f}/s: "
                  f"ratio {figures['ratio']:.3f} (target >= 0.85); per CPU-second "
                  f"{figures['ours_per_cpu_s']:.1f} vs {figures['bare_per_cpu_s']:.1f}: "
                  f"{figures['cpu_ratio']:.3f}")
            print(f"limiter accuracy: {len(RATES)} pools at once for {seconds:.0f} s, measured "
                  "at the server")
            figures.update(accuracy(server, seconds))
        finally:
            server.stop()
    figures["seconds"] = time.perf_counter() - started
    summary = {"ratio": f"{figures['ratio']:.3f}", "cpu_ratio": f"{figures['cpu_ratio']:.3f}",
               "ours_per_s": f"{figures['ours_per_s']:.1f}",
               "bare_per_s": f"{figures['bare_per_s']:.1f}",
               "ours_per_cpu_s": f"{figures['ours_per_cpu_s']:.1f}",
               "bare_per_cpu_s": f"{figures['bare_per_cpu_s']:.1f}",
               "rate_error_pct": f"{figures['rate_error_pct']:.2f}",
               **{f"{name}_rate": f"{figures[f'{name}_rate']:.2f}" for name in RATES},
               **{f"{name}_configured": f"{rate:.1f}" for name, rate in RATES.items()},
               "messages": str(n), "attachment_kb": str(ATTACHMENT // 1000),
               "connections": str(CONNECTIONS), "accuracy_seconds": f"{seconds:.0f}",
               "quick": str(args.quick).lower(), "seconds": f"{figures['seconds']:.0f}"}
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
