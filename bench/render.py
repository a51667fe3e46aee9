"""Benchmark: encrypted statements per second per core, against the R6 key-derivation floor.

What one encrypted statement costs: render (layout + PDF objects + the deterministic plain
file and its content hash), derive the member password, encrypt (R6: four Algorithm 2.B
hashes, then AES-256 of every string and stream). The floor is those four key-derivation
hashes alone, done through OpenSSL (AES through cffi + `hashlib` SHA-2), measured in the
same process, interleaved with the full runs so machine noise hits both alike. Per-core
figures use CPU time (time.process_time), so other work on the machine inflates them less
than wall time; wall figures are printed too.

The typical statement: 8 claim lines (one denied), one out-of-network emergency claim (No
Surprises Act text), English, two pages: claims on page 1; codes, accumulators, appeal
rights, No Surprises text and taglines on page 2. Every statement is for a different member
(different password, different claims).

--workers 2 also runs two worker processes side by side (as two render shards would) and
reports their combined throughput against one process; --stage does the same with the real
render stage on two shards of a generated run (ledger, object store and all).

    .venv/bin/python bench/render.py [--quick] [--count N] [--rounds R]
        [--workers 2] [--stage] [--qpdf] [--language en|es]

The last line is one key=value summary: per_core= floor= ratio= (and more).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pipeline.model import Statement  # noqa: E402
from pipeline.render import encrypt_pdf, freeze_caches, member_password, render_statement  # noqa: E402
from pipeline.render.pdf import hash_2b, password_bytes  # noqa: E402
from tests.support.factories import make_member, make_statement  # noqa: E402

OWNER = "bench-owner-password-0f3c"
POLICY = "dob_mmddyyyy"


def statements(count: int, *, language: str = "en", offset: int = 0) -> list[Statement]:
    """`count` typical statements, each for a different member."""
    out = []
    for index in range(offset, offset + count):
        member = make_member(member_id=f"M{400000000 + index:09d}", language=language,
                             date_of_birth=date(1950, 1, 1) + timedelta(days=index * 37 % 20000))
        out.append(make_statement(n_lines=8, denied=1, member=member))
    return out


# ---------------------------------------------------------------- the measured operations


def floor_once(user: str, owner: str) -> None:
    """The four Algorithm 2.B derivations of one R6 file (U, UE key, O, OE key)."""
    u_bytes, o_bytes = password_bytes(user), password_bytes(owner)
    salts = os.urandom(32)
    u = hash_2b(u_bytes, salts[:8]) + salts[:16]
    hash_2b(u_bytes, salts[8:16])
    hash_2b(o_bytes, salts[16:24], u)
    hash_2b(o_bytes, salts[24:32], u)


def encrypted_statement(statement: Statement) -> tuple[bytes, str, int]:
    """What the render stage does per email statement, minus the upload."""
    rendered = render_statement(statement)
    data = encrypt_pdf(rendered, user_password=member_password(statement.member, POLICY),
                       owner_password=OWNER)
    return data, rendered.content_sha256, rendered.pages


@dataclass(slots=True)
class Timed:
    count: int = 0
    cpu: float = 0.0
    wall: float = 0.0

    def add(self, count: int, cpu: float, wall: float) -> None:
        self.count += count
        self.cpu += cpu
        self.wall += wall

    @property
    def per_cpu_second(self) -> float:
        return self.count / self.cpu if self.cpu else 0.0

    @property
    def ms_cpu(self) -> float:
        return 1000 * self.cpu / self.count if self.count else 0.0


def timed(function: Any, items: list[Any]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for item in items:
        function(item)
    return time.process_time() - cpu, time.perf_counter() - wall


# ---------------------------------------------------------------- single process


def single_process(count: int, rounds: int, language: str, qpdf: bool) -> dict[str, float]:
    batch = statements(count, language=language)
    passwords = [member_password(s.member, POLICY) for s in batch]
    for statement in batch[:20]:  # warm-up: template files, caches, code paths
        encrypted_statement(statement)
    check_one(batch[0])
    freeze_caches()  # as the render stage does after its first statement
    pages = {render_statement(s).pages for s in batch}
    print(f"workload: {count} {language} statements x {rounds} rounds; pages per statement: "
          f"{sorted(pages)}")

    floor, full, render, encrypt = Timed(), Timed(), Timed(), Timed()
    ratios = []
    for _ in range(rounds):
        cpu, wall = timed(lambda user: floor_once(user, OWNER), passwords)
        floor.add(len(passwords), cpu, wall)
        round_floor = len(passwords) / cpu
        cpu, wall = timed(encrypted_statement, batch)
        full.add(len(batch), cpu, wall)
        ratios.append((len(batch) / cpu) / round_floor)
    rendered = [render_statement(s) for s in batch]
    for _ in range(rounds):
        render.add(len(batch), *timed(render_statement, batch))
        pairs = list(zip(rendered, passwords, strict=True))
        encrypt.add(len(pairs), *timed(
            lambda pair: encrypt_pdf(pair[0], user_password=pair[1], owner_password=OWNER),
            pairs))

    per_core, floor_rate = full.per_cpu_second, floor.per_cpu_second
    print(f"floor (4 x Algorithm 2.B via OpenSSL): {floor.ms_cpu:.2f} ms CPU/file "
          f"= {floor_rate:.1f} files/s per core")
    print(f"render only:    {render.ms_cpu:.2f} ms CPU/statement")
    print(f"encrypt only:   {encrypt.ms_cpu:.2f} ms CPU/statement "
          f"(of which key derivation ~{floor.ms_cpu:.2f})")
    print(f"render+encrypt: {full.ms_cpu:.2f} ms CPU/statement = {per_core:.1f} statements/s "
          f"per core (wall {full.count / full.wall:.1f}/s)")
    print(f"ratio to floor: {per_core / floor_rate:.3f} (per round: "
          f"{', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f})")
    result = {"per_core": per_core, "floor": floor_rate, "ratio": per_core / floor_rate,
              "ratio_median": statistics.median(ratios),
              "render_ms": render.ms_cpu, "encrypt_ms": encrypt.ms_cpu,
              "kdf_ms": floor.ms_cpu, "pages": max(pages),
              "bytes": sum(len(r.pdf) for r in rendered) / len(rendered)}
    if qpdf:
        subset = list(zip(rendered, passwords, strict=True))[: max(20, count // 5)]
        cpu, _ = timed(lambda pair: encrypt_pdf(pair[0].pdf, user_password=pair[1],
                                                owner_password=OWNER), subset)
        result["qpdf_encrypt_ms"] = 1000 * cpu / len(subset)
        print(f"for comparison, pikepdf/qpdf R6 encryption of the same files: "
              f"{result['qpdf_encrypt_ms']:.2f} ms CPU/statement")
    return result


def check_one(statement: Statement) -> None:
    """The benchmark measures files that open with the member's password only."""
    import pikepdf

    data, _, pages = encrypted_statement(statement)
    with pikepdf.open(io.BytesIO(data), password=member_password(statement.member, POLICY)) as pdf:
        assert len(pdf.pages) == pages and pdf.encryption.R == 6
    try:
        pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        return
    raise AssertionError("an encrypted statement opened without a password")


# ---------------------------------------------------------------- two processes


def _worker(args: tuple[int, int, str, Any]) -> tuple[int, float, float, float]:
    offset, count, language, barrier = args
    batch = statements(count, language=language, offset=offset)
    for statement in batch[:10]:
        encrypted_statement(statement)
    freeze_caches()
    barrier.wait()
    cpu, start = time.process_time(), time.perf_counter()
    for statement in batch:
        encrypted_statement(statement)
    return len(batch), time.process_time() - cpu, start, time.perf_counter()


def _spin(seconds: float) -> float:
    """Control: a pure loop, to see how much CPU a process can get on this machine now."""
    cpu, start = time.process_time(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        pass
    return time.process_time() - cpu


def processes(workers: int, count: int, language: str) -> dict[str, float]:
    """`workers` processes at once vs one process: combined statements per wall second."""
    context = multiprocessing.get_context("spawn")
    results = {}
    load = os.getloadavg()[0]
    with context.Pool(workers) as pool:
        spun = sum(pool.map(_spin, [2.0] * workers)) / 2.0
    print(f"{len(os.sched_getaffinity(0))} CPUs usable; load average before: {load:.2f}; "
          f"control: {workers} busy loops got {spun:.2f} cores (other work on the machine "
          f"takes the rest)")
    for n in (1, workers):
        with context.Manager() as manager:
            barrier = manager.Barrier(n)
            with context.Pool(n) as pool:
                runs = pool.map(_worker, [(100000 * i, count, language, barrier)
                                          for i in range(n)])
        done = sum(r[0] for r in runs)
        wall = max(r[3] for r in runs) - min(r[2] for r in runs)
        cpu = sum(r[1] for r in runs)
        results[n] = (done / wall, cpu / wall)
        print(f"{n} process(es): {done} statements in {wall:.2f} s wall = {done / wall:.1f}/s; "
              f"CPU {cpu:.2f} s = {cpu / wall:.2f} cores busy, "
              f"{1000 * cpu / done:.2f} ms CPU/statement")
    speedup = results[workers][0] / results[1][0]
    print(f"{workers} processes vs 1: {speedup:.2f}x throughput "
          f"({os.cpu_count()} CPUs on this machine, shared with other work)")
    return {"workers": workers, "one_process_per_s": results[1][0],
            f"processes{workers}_per_s": results[workers][0], "speedup": speedup,
            "cores_busy": results[workers][1], "control_cores": spun, "load_before": load}


# ---------------------------------------------------------------- two real render shards


def _stage_worker(args: tuple[str, str, int, Any]) -> tuple[dict[str, Any], float, float, float]:
    workspace, period, shard, barrier = args
    os.environ["EOB_WORKSPACE"] = workspace
    os.environ["EOB_SHARDS"] = "2"
    os.environ["EOB_ENVIRONMENT"] = "demo"  # the shipped test secrets
    import pipeline.compose  # noqa: F401  (pyarrow import: outside the timing)
    from pipeline.stages import open_context, render_stage

    ctx = open_context()
    render_statement(statements(1)[0])  # template and cache warm-up outside the timing
    barrier.wait()
    cpu, start = time.process_time(), time.perf_counter()
    result = render_stage(ctx, period, shard)
    return result, time.process_time() - cpu, start, time.perf_counter()


def stage(members: int) -> dict[str, float]:
    """A generated run, ingested and composed, then its two shards rendered at once."""
    from pipeline.demo.generate import generate_extract
    from pipeline.settings import Settings
    from pipeline.stages import compose_stage, ingest_stage, open_context

    period = "2026-11"
    with tempfile.TemporaryDirectory(prefix="eob-bench-") as folder:
        settings = Settings(workspace=Path(folder), shards=2, environment="demo")
        generate_extract(settings.extracts_dir / period, members=members, period=period,
                         seed=7)
        ctx = open_context(settings)
        ingest_stage(ctx, period)
        compose_stage(ctx, period)
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            barrier = manager.Barrier(2)
            with context.Pool(2) as pool:
                runs = pool.map(_stage_worker, [(folder, period, shard, barrier)
                                                for shard in (0, 1)])
        done = sum(r[0]["rendered"] for r in runs)
        wall = max(r[3] for r in runs) - min(r[2] for r in runs)
        cpu = sum(r[1] for r in runs)
        for result, shard_cpu, start, end in runs:
            print(f"shard {result['shard']}: {result['rendered']} rendered "
                  f"({result['failed']} failed) in {end - start:.2f} s wall, "
                  f"{shard_cpu:.2f} s CPU")
        print(f"render stage, 2 shards at once: {done} statements in {wall:.2f} s wall = "
              f"{done / wall:.1f}/s; {cpu / wall:.2f} cores busy")
    return {"stage_per_s": done / wall, "stage_cores_busy": cpu / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller count")
    parser.add_argument("--count", type=int, help="statements per round (default 300, quick 60)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--language", default="en", choices=("en", "es"))
    parser.add_argument("--workers", type=int, default=0,
                        help="also run this many processes at once (e.g. 2)")
    parser.add_argument("--stage", action="store_true",
                        help="also render two shards of a generated run with the real stage")
    parser.add_argument("--qpdf", action="store_true",
                        help="also time pikepdf/qpdf encryption for comparison")
    args = parser.parse_args()
    count = args.count or (60 if args.quick else 300)
    rounds = args.rounds or (3 if args.quick else 5)
    summary: dict[str, float] = single_process(count, rounds, args.language, args.qpdf)
    if args.workers:
        summary |= processes(args.workers, count * 2, args.language)
    if args.stage:
        summary |= stage(200 if args.quick else 1000)
    print(" ".join(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}"
                   for key, value in summary.items()))


if __name__ == "__main__":
    main()
