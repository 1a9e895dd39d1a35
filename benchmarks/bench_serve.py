"""Load test of `itemvec serve` on loopback: concurrent clients asking for similar items.

Starts `itemvec serve RUN_DIR|REPORT_DIR ...` in its own process, waits for /healthz, then for each number of
clients sends ``--requests`` GET /v1/items/{id}/similar?k=K requests (the ids drawn at random from the items
the first model learned) over keep-alive HTTP/1.1 connections, each client sending its next request when the
last answer arrived. Reports requests per second, latency percentiles, errors (any answer but 200 with K
results per model, or a broken connection) and the server's memory (resident, its anonymous part, and the
file pages it maps: the memory-mapped weights and index).

    python benchmarks/bench_serve.py bench-output/run-mf-bias-420000 --clients 16,64 --requests 10000

The clients are one asyncio loop in this process, written with plain streams so that the client costs as
little of the machine (which it shares with the server) as it can. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[key] = round(int(value.split()[0]) / 1024)
    return {"rss_mb": fields.get("VmRSS"), "peak_rss_mb": fields.get("VmHWM"), "anon_mb": fields.get("RssAnon"),
            "file_mb": fields.get("RssFile")}


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def load(port: int, paths: list[str], clients: int, check) -> dict:
    latencies: list[float] = []
    errors = 0
    cursor = iter(range(len(paths)))

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n in cursor:
                started = time.perf_counter()
                try:
                    status, body = await get(reader, writer, paths[n])
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(time.perf_counter() - started)
                if status != 200 or not check(body):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(paths), "seconds": round(elapsed, 2),
            "rps": round(len(paths) / elapsed, 1), "errors": errors,
            **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)},
            "max_ms": round(float(ms.max()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="RUN_DIRs or REPORT_DIRs to serve")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--model", help="ask one model (default: every served model answers each request)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from itemvec.runs import open_run
    from itemvec.serve.app import run_dirs

    model, data, _ = open_run(run_dirs([Path(p) for p in args.paths])[0], mmap=True)
    ids = data.asins if data.kind == "pairs" else [str(i) for i in data.items().column("item_id").to_pylist()]
    learned = np.flatnonzero(model.known_items_)
    rng = np.random.default_rng(args.seed)
    from urllib.parse import quote

    query = f"?k={args.k}" + (f"&model={quote(args.model)}" if args.model else "")
    picks = rng.choice(learned, size=args.warmup + args.requests * len(args.clients))
    paths = [f"/v1/items/{quote(ids[i], safe='')}/similar{query}" for i in picks]
    del model, data

    def check(body: bytes) -> bool:
        answer = json.loads(body)
        return all(len(m["results"]) == args.k for m in answer["models"].values())

    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "itemvec", "serve", *args.paths, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        banner = []
        for line in server.stdout:  # the service says where it serves once every model is loaded
            banner.append(line.rstrip())
            if line.startswith("serving "):
                break
        else:
            raise SystemExit("the service did not start:\n" + "\n".join(banner))
        start_s = time.perf_counter() - started
        at_start = memory(server.pid)
        asyncio.run(load(port, paths[:args.warmup], 4, check))
        offset, levels = args.warmup, []
        for clients in args.clients:
            level = asyncio.run(load(port, paths[offset:offset + args.requests], clients, check))
            offset += args.requests
            level["server_memory"] = memory(server.pid)
            levels.append(level)
            print(json.dumps(level), file=sys.stderr, flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "served": args.paths,
              "banner": banner, "k": args.k, "model": args.model, "start_seconds": round(start_s, 1),
              "server_memory_at_start": at_start, "levels": levels, "server_exit": server.returncode}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
