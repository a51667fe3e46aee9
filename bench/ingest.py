"""Benchmark ingest + validate + compose against a bare pyarrow read + group-by of the same file.

For each size (N claim lines, then 2N, to show memory does not grow with the input) it
generates a synthetic extract once (cached under --workdir; one claims CSV file, about four
lines per member, ~0.6% malformed rows), then measures in separate child processes:

- ours: `ingest()` of the extract (plans, members and claims, validated, into canonical shard
  buckets with each member's line totals), then the compose stage's vectorised statement
  summaries (`compose_shard`) for every shard;
- bare: `pyarrow.csv.read_csv` of the same claims file plus a group-by member;
- with --floor, also parse only: ingest's own streaming CSV reader over the claims file (the
  same read options, record batches, dictionary columns) and nothing else: the share of the
  budget that reading alone takes, before any check, hash, staging or Parquet.

Each side runs --repeat times (default 5), alternating; times are medians and the ratio is the
median of the back-to-back pairs' ratios, as the machine may be shared. Peak RSS is the child's
(getrusage(RUSAGE_CHILDREN).ru_maxrss, read by a parent process that ran only that child), the
highest of the runs. Times exclude interpreter start-up and imports, which are the same for
every input size; ingest's compiled kernels are loaded before the timer too (numba's start-up,
about half a second once per process, printed as "numba kernels loaded").

    .venv/bin/python bench/ingest.py            # 1,000,000 and 2,000,000 lines
    .venv/bin/python bench/ingest.py --quick    # 50,000 and 100,000 lines

The last line is a key=value summary: ratio= (ours / bare at N), rss_mib= (ours at N),
rss_mib_2x= (ours at 2N), among others; ratio_all_files= is for context only (the bare side
also reading members.csv, which ingest reads too), ratio= is the figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PERIOD = "2026-11"
LINES_PER_MEMBER = 4.0


def _extract(workdir: Path, lines: int, seed: int) -> Path:
    """A cached extract of about `lines` claim lines in one claims CSV file."""
    from pipeline.demo.generate import generate_extract

    folder = workdir / f"extract-{lines}-{seed}"
    done = folder / ".done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        result = generate_extract(folder, members=max(1, int(lines / LINES_PER_MEMBER)), period=PERIOD,
                                  seed=seed, claim_files=1)
        done.write_text(json.dumps({"lines": result.claim_lines, "members": result.members}))
        print(f"  generated {result.claim_lines:,} lines for {result.members:,} members in "
              f"{time.perf_counter() - started:.1f}s -> {folder}", flush=True)
    return folder


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _work_ours(folder: Path, out: Path, shards: int) -> dict[str, float]:
    import pyarrow as pa
    import pyarrow.compute as pc

    pa.array([1])  # pyarrow imports pandas lazily on first use: keep that out of the timing
    from pipeline.column_kernels import load_kernels
    from pipeline.compose import compose_shard
    from pipeline.deadlines import NoticeRule
    from pipeline.ingest import ingest
    from pipeline.periods import statement_date

    loading = time.perf_counter()
    load_kernels()  # numba's once-per-process start: reported, but timed like the imports (not at all)
    kernels_s = time.perf_counter() - loading
    shutil.rmtree(out, ignore_errors=True)
    started, cpu = time.perf_counter(), _cpu()
    result = ingest(folder, out, shards, period=PERIOD)
    ingested = time.perf_counter()
    statements = emailed = 0
    for shard in range(shards):
        for summary in compose_shard(out, shard, PERIOD,
                                     notices=NoticeRule.leaving_on(30, statement_date(PERIOD))):
            statements += summary.num_rows
            emailed += pc.sum(pc.equal(summary["channel"], "email")).as_py() or 0
    finished = time.perf_counter()
    return {"seconds": finished - started, "cpu_s": _cpu() - cpu, "ingest_s": ingested - started,
            "compose_s": finished - ingested, "kernels_s": kernels_s,
            "phases": result.seconds,
            "lines_read": result.rows_read, "lines_accepted": result.rows_accepted,
            "lines_quarantined": result.rows_quarantined, "members": result.members,
            "statements": statements, "emailed": emailed, "buckets": shards * result.buckets_per_shard}


def _work_bare(folder: Path) -> dict[str, float]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    pa.array([1])
    path = next(folder.glob("claims*.csv"))
    started, cpu = time.perf_counter(), _cpu()
    table = pacsv.read_csv(path)
    groups = table.group_by("member_id").aggregate([("claim_id", "count"), ("line_no", "sum")])
    claims_s, claims_cpu = time.perf_counter() - started, _cpu() - cpu
    members = pacsv.read_csv(folder / "members.csv")  # for context: the whole extract, bare
    return {"seconds": claims_s, "cpu_s": claims_cpu, "rows": table.num_rows,
            "groups": groups.num_rows, "all_files_s": time.perf_counter() - started,
            "member_rows": members.num_rows}


def _work_floor(folder: Path) -> dict[str, float]:
    import pyarrow as pa

    pa.array([1])
    from pipeline.ingest import canonical_extract, text_batches

    claims = canonical_extract(folder).claims
    started, cpu = time.perf_counter(), _cpu()
    rows = sum(batch.num_rows for item in claims for batch in text_batches(item))
    return {"seconds": time.perf_counter() - started, "cpu_s": _cpu() - cpu, "rows": rows}


def _measure(kind: str, folder: Path, out: Path, shards: int) -> dict[str, float]:
    """Run one worker child from a fresh parent, so RUSAGE_CHILDREN is that child's alone."""
    code = ("import json, resource, subprocess, sys; "
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stderr.write(p.stderr); "
            "ok = p.returncode == 0; "
            "r = json.loads(p.stdout.strip().splitlines()[-1]) if ok else {'error': p.returncode}; "
            "r['rss_mib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
            "print(json.dumps(r))")
    worker = [sys.executable, __file__, "--work", kind, "--folder", str(folder), "--out", str(out),
              "--shards", str(shards)]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *worker], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in figures:
        raise SystemExit(f"{kind} worker failed (exit {figures['error']}):\n{done.stderr[-3000:]}")
    figures["process_s"] = time.perf_counter() - started
    return figures


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median wall time (its other figures come along with it)."""
    return dict(sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 lines (and 100,000)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-double", action="store_true", help="skip the 2N run")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of each side, alternating; the figures are their medians")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "eob-bench-ingest")
    parser.add_argument("--floor", action="store_true",
                        help="also time ingest's CSV reader alone (parse only, no checks)")
    parser.add_argument("--work", choices=["ours", "bare", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.work:  # a worker child: do the work, print one JSON line
        work = {"ours": lambda: _work_ours(args.folder, args.out, args.shards),
                "bare": lambda: _work_bare(args.folder), "floor": lambda: _work_floor(args.folder)}
        figures = work[args.work]()
        figures["self_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    lines = 50_000 if args.quick else args.lines
    sizes = [lines] if args.no_double else [lines, 2 * lines]
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for size in sizes:
        print(f"size {size:,} lines", flush=True)
        folder = _extract(args.workdir, size, args.seed)
        out = args.workdir / f"run-{size}"
        bares, ourses, floors = [], [], []
        for attempt in range(args.repeat):  # alternate, so a busy moment hits both sides alike
            bares.append(_measure("bare", folder, out, args.shards))
            ourses.append(_measure("ours", folder, out, args.shards))
            if args.floor:
                floors.append(_measure("floor", folder, out, args.shards))
            print(f"  run {attempt + 1}: bare {bares[-1]['seconds']:.2f}s, ours {ourses[-1]['seconds']:.2f}s",
                  flush=True)
        shutil.rmtree(out, ignore_errors=True)
        bare, ours = _median(bares), _median(ourses)
        ours["rss_mib"] = max(o["rss_mib"] for o in ourses)
        bare["rss_mib"] = max(b["rss_mib"] for b in bares)
        pairs = sorted(o["seconds"] / b["seconds"] for o, b in zip(ourses, bares, strict=True))
        ratio = pairs[len(pairs) // 2]  # each pair ran back to back: the machine's mood cancels out
        print(f"  bare pyarrow read + group-by: {bare['seconds']:.2f}s (cpu {bare['cpu_s']:.2f}s), "
              f"peak RSS {bare['rss_mib']:.0f} MiB  [median of {args.repeat}]; with a bare read of "
              f"members.csv too: {bare['all_files_s']:.2f}s")
        print(f"  ingest + validate + compose:  {ours['seconds']:.2f}s (cpu {ours['cpu_s']:.2f}s; "
              f"ingest {ours['ingest_s']:.2f}s, "
              f"compose {ours['compose_s']:.2f}s), peak RSS {ours['rss_mib']:.0f} MiB, "
              f"{ours['buckets']:.0f} buckets  [median of {args.repeat}]")
        print(f"  numba kernels loaded before timing (once per process, like the imports): "
              f"{ours['kernels_s']:.2f}s")
        print("  ingest phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in ours["phases"].items()))
        print(f"  lines read {ours['lines_read']:,.0f} = accepted {ours['lines_accepted']:,.0f} + "
              f"quarantined {ours['lines_quarantined']:,.0f}; {ours['statements']:,.0f} statements "
              f"({ours['emailed']:,.0f} email) for {ours['members']:,.0f} members")
        if floors:
            floor = _median(floors)
            print(f"  parse only (ingest's CSV reader, no checks): {floor['seconds']:.2f}s "
                  f"(cpu {floor['cpu_s']:.2f}s) = {floor['seconds'] / bare['seconds']:.2f}x the bare "
                  f"time, {floor['cpu_s'] / bare['cpu_s']:.2f}x its cpu  [median of {args.repeat}]")
            ours["parse_only_ratio"] = floor["seconds"] / bare["seconds"]
            ours["parse_only_cpu_ratio"] = floor["cpu_s"] / bare["cpu_s"]
        print(f"  ratio ours/bare {ratio:.2f} (median of the {len(pairs)} back-to-back pairs: "
              f"{', '.join(f'{p:.2f}' for p in pairs)})", flush=True)
        results.append((size, ours, bare, ratio))
    size, ours, bare, ratio = results[0]
    summary = {"lines": int(ours["lines_read"]), "statements": int(ours["statements"]),
               "ours_s": round(ours["seconds"], 2), "bare_s": round(bare["seconds"], 2),
               "ratio": round(ratio, 2), "cpu_ratio": round(ours["cpu_s"] / bare["cpu_s"], 2),
               "ratio_all_files": round(ours["seconds"] / bare["all_files_s"], 2),
               "rss_mib": round(ours["rss_mib"]),
               "bare_rss_mib": round(bare["rss_mib"])}
    if "parse_only_ratio" in ours:
        summary |= {key: round(ours[key], 2) for key in ("parse_only_ratio", "parse_only_cpu_ratio")}
    if len(results) > 1:
        size2, ours2, bare2, ratio2 = results[1]
        summary |= {"lines_2x": int(ours2["lines_read"]), "ratio_2x": round(ratio2, 2),
                    "rss_mib_2x": round(ours2["rss_mib"]),
                    "rss_growth": round(ours2["rss_mib"] / ours["rss_mib"], 2)}
    print(" ".join(f"{key}={value}" for key, value in summary.items()))


if __name__ == "__main__":
    main()
