"""Latency the capture proxy adds, against calling the (fake) provider directly, alternately.

Three processes on loopback: a fake Anthropic API (`workbench.collect.fake_upstream`) that
answers after `--upstream-ms` (a fast model), the real `workbench capture --foreground`
forwarding to it and storing every pair in a temporary workspace, and this client, which keeps
`--concurrency` requests in flight over keep-alive connections. Rounds alternate between
direct and through-the-proxy (the order flipped every round); the figure is the median over
rounds of (proxied median - direct median). Streamed answers (SSE, 12 events each) are timed the
same way, to the last byte. Also measured: one request at a time with an upstream that answers
at once (the bare cost of the extra hop), and the CPU time per request of the proxy process
(forwarding) and of its storing process.

Target (issue 7): the proxy adds at most 5 ms median latency at 50 concurrent requests.

    .venv/bin/python bench/capture.py [--rounds 12] [--concurrency 50] [--upstream-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO, median, table, write_section

FAKE = """
import sys
from workbench.collect.fake_upstream import FakeUpstream, serve_fake_upstream
fake = FakeUpstream(delay_s=float(sys.argv[1]) / 1000, keep_requests=False)
with serve_fake_upstream(fake, lifetime_s=1800) as fake:
    print(fake.url, flush=True)
    sys.stdin.read()
"""
TARGET_MS = 5.0


def start_fake(upstream_ms: float) -> tuple[subprocess.Popen[str], str]:
    """The fake provider in its own process; its URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", FAKE, str(upstream_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def start_proxy(workspace: Path, upstream: str) -> tuple[subprocess.Popen[str], str]:
    """The real command, as a user runs it: `workbench capture --foreground`; its URL."""
    subprocess.run(
        [sys.executable, "-m", "workbench.cli", "init", str(workspace)],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    command = ["-w", str(workspace), "capture", "--foreground", "--json", "--port", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", *command, "--upstream", upstream],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    event = json.loads(process.stdout.readline())
    assert event["type"] == "listening", event
    return process, event["url"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(pid: int) -> tuple[float, float]:
    """CPU seconds of the proxy process and of its children (the storing process)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid), sum(cpu_seconds(int(child)) for child in children)


def request_bytes(port: int, stream: bool, number: int, delay_ms: float | None) -> bytes:
    body = json.dumps(
        {
            "model": "claude-bench",
            "max_tokens": 200,
            "stream": stream,
            "messages": [
                {"role": "user", "content": f"Write a title for page {number} about gardens"}
            ],
        }
    ).encode()
    delay = f"x-fake-delay-ms: {delay_ms}\r\n" if delay_ms is not None else ""
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "x-api-key: sk-ant-bench\r\nanthropic-version: 2023-06-01\r\n"
        f"{delay}content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one whole response (Content-Length or chunked); its status."""
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value:
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while size := int((await reader.readline()).strip(), 16):
        await reader.readexactly(size + 2)
    await reader.readline()
    return status


async def connection(
    url: str, count: int, stream: bool, delay_ms: float | None, latencies: list[float]
) -> None:
    """One keep-alive connection sending `count` requests one after another."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for number in range(count):
            started = time.perf_counter()
            writer.write(request_bytes(int(port), stream, number, delay_ms))
            status = await read_response(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            assert status == 200, status
    finally:
        writer.close()


async def one_round(
    url: str, concurrency: int, per_connection: int, stream: bool, delay_ms: float | None
) -> list[float]:
    latencies: list[float] = []
    await asyncio.gather(
        *(connection(url, per_connection, stream, delay_ms, latencies) for _ in range(concurrency))
    )
    return latencies


def alternate(
    rounds: int, urls: dict[str, str], proxy_pid: int, **shape: object
) -> tuple[dict[str, list[float]], list[float]]:
    """Rounds alternating direct / proxy (order flipped each round): latencies per mode and
    the CPU seconds of the proxy process and of its storing process during its rounds."""
    results: dict[str, list[float]] = {"direct": [], "proxy": [], "round_added": []}
    cpu = [0.0, 0.0]
    for number in range(rounds):
        order = ["direct", "proxy"] if number % 2 == 0 else ["proxy", "direct"]
        medians = {}
        for mode in order:
            before = cpu_split(proxy_pid)
            latencies = asyncio.run(one_round(urls[mode], **shape))  # type: ignore[arg-type]
            results[mode] += latencies
            medians[mode] = median(latencies)
            if mode == "proxy":
                time.sleep(0.3)  # let the storing process catch up before reading its CPU
                after = cpu_split(proxy_pid)
                cpu = [total + a - b for total, a, b in zip(cpu, after, before, strict=True)]
        results["round_added"].append(medians["proxy"] - medians["direct"])
    return results, cpu


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rows_for(label: str, results: dict[str, list[float]], target_ms: float | None) -> list:
    direct, proxy = median(results["direct"]), median(results["proxy"])
    added = median(results["round_added"])  # paired: each round against its neighbour
    met = "" if target_ms is None else ("yes" if added <= target_ms else "NO")
    spread = {mode: percentile(results[mode], 0.95) for mode in ("direct", "proxy")}
    low, high = min(results["round_added"]), max(results["round_added"])
    return [
        [f"{label}: direct, median (p95)", f"{direct:.2f} ms ({spread['direct']:.1f})", "", ""],
        [f"{label}: proxied, median (p95)", f"{proxy:.2f} ms ({spread['proxy']:.1f})", "", ""],
        [
            f"{label}: **added by the proxy** (median of rounds; lowest .. highest)",
            f"{added:+.2f} ms ({low:+.1f} .. {high:+.1f})",
            f"≤ {target_ms:.0f} ms" if target_ms is not None else "",
            met,
        ],
    ]


def count_stored(workspace: Path) -> int:
    from workbench.data.store import ExampleStore, Query

    with ExampleStore(workspace / "examples.db") as store:
        return store.count(Query(tag="captured", flag="needs-review"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--per-connection", type=int, default=6, help="requests per round")
    parser.add_argument("--upstream-ms", type=float, default=100.0)
    parser.add_argument("--no-write", action="store_true", help="print, leave the doc alone")
    args = parser.parse_args()
    load = os.getloadavg()
    fake, upstream = start_fake(args.upstream_ms)
    sent = 0
    with tempfile.TemporaryDirectory() as tmp:
        proxy, url = start_proxy(Path(tmp) / "ws", upstream)
        urls = {"direct": upstream, "proxy": url}
        try:
            concurrent = {"concurrency": args.concurrency, "per_connection": args.per_connection}
            for stream in (False, True):  # warm both paths up
                for target in urls.values():
                    asyncio.run(one_round(target, args.concurrency, 2, stream, None))
                    sent += args.concurrency * 2 if target == url else 0
            single, _ = alternate(
                args.rounds, urls, proxy.pid, concurrency=1, per_connection=100,
                stream=False, delay_ms=0,
            )  # fmt: skip
            plain, cpu_plain = alternate(
                args.rounds, urls, proxy.pid, stream=False, delay_ms=None, **concurrent
            )
            streamed, cpu_streamed = alternate(
                args.rounds, urls, proxy.pid, stream=True, delay_ms=None, **concurrent
            )
        finally:
            proxy.send_signal(signal.SIGINT)
            proxy.wait(timeout=120)
            fake.kill()
        stored = count_stored(Path(tmp) / "ws")
    sent += len(single["proxy"]) + len(plain["proxy"]) + len(streamed["proxy"])
    per_request = [
        [seconds * 1000 / len(results["proxy"]) for seconds in cpu]
        for results, cpu in ((plain, cpu_plain), (streamed, cpu_streamed))
    ]
    rows = (
        rows_for("one at a time, instant upstream", single, None)
        + rows_for(f"{args.concurrency} concurrent, JSON answers", plain, TARGET_MS)
        + rows_for(f"{args.concurrency} concurrent, streamed answers", streamed, TARGET_MS)
    )
    rows += [
        [
            "CPU per request, forwarding (proxy process), JSON / SSE",
            f"{per_request[0][0]:.2f} / {per_request[1][0]:.2f} ms",
            "",
            "",
        ],
        [
            "CPU per request, storing (its own process), JSON / SSE",
            f"{per_request[0][1]:.2f} / {per_request[1][1]:.2f} ms",
            "",
            "",
        ],
        ["pairs stored for review / sent through the proxy", f"{stored} / {sent}", "all", ""],
    ]
    body = (
        f"{args.concurrency} concurrent keep-alive connections on loopback; "
        f"{args.rounds} rounds of {args.concurrency * args.per_connection} requests per mode "
        "and answer kind, direct and proxied rounds alternating (order flipped every round). "
        f"The fake upstream answers after {args.upstream_ms:.0f} ms (a fast model); the proxy "
        "is `workbench capture --foreground`, storing every pair in a temporary workspace. "
        "The figure is the median over rounds of (proxied median - direct median), each round "
        "paired with the one beside it. Other processes shared the machine's two cores (load "
        f"average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end), so single "
        "rounds vary by several ms either way; the CPU rows are the steadier measure of what "
        "the proxy costs.\n\n" + table(["measure", "value", "target", "met"], rows)
    )
    if args.no_write:
        print(body)
        return
    print(
        write_section(
            "capture", "Capture proxy (issue 7)", ".venv/bin/python bench/capture.py", body
        )
    )


if __name__ == "__main__":
    main()
