"""What every benchmark script shares: the machine's description, RESULTS.md sections and the
closed-loop HTTP load generator."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import platform
import re
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def cluster_ports(base: int) -> dict[str, int]:
    """The ports of a benchmark's own local cluster, all offset from ``base`` (26000, 27000, …),
    so benchmarks and the test session's cluster (25xxx) never meet."""
    return {"gcs_port": base + 379, "dashboard_port": base + 265, "serve_http_port": base + 100,
            "metrics_export_port": base + 90, "client_server_port": base + 1, "dashboard_agent_port": base + 365,
            "haproxy_stats_port": base + 404, "haproxy_metrics_port": base + 101,
            "fallback_proxy_http_port": base + 500, "fallback_proxy_grpc_port": base + 501}


def isolated_home(prefix: str) -> Path:
    """A fresh temporary directory as ``RAYMLOPS_HOME`` (this run's registry, data and tokens), with the
    settings a driver here needs to find its loopback cluster and send the token (Ray reads them when
    it is imported)."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
                       "RAYMLOPS_HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(home / "ray_auth_token")})
    os.environ.pop("RAY_ADDRESS", None)
    return home


def machine_description() -> str:
    """CPU model, cores, memory and Python, for the record next to every figure."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal"))
        memory = f"{memory_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    return f"{cpu}, {os.cpu_count()} cores, {memory}, Python {platform.python_version()}"


def _fixed_work() -> float:
    """Milliseconds one fixed piece of pure-Python work takes now (about 10 ms on this machine)."""
    started = time.perf_counter()
    total = 0
    for i in range(150_000):
        total += i * i
    return (time.perf_counter() - started) * 1000


class SpeedProbe:
    """How fast the machine ran during a benchmark: a background thread of the driver times the same
    piece of pure-Python work every ``every_s`` seconds (about 10 ms of one core each time, while the
    driver itself waits for its load processes). On a shared virtual machine that time moves with
    the host's load, which the guest does not see as steal time; its spread says how far a run's
    figures can move with the machine alone, next to the figures it moved.

    Use as a context manager around the measurements; :meth:`summary` after it."""

    def __init__(self, every_s: float = 5.0) -> None:
        import threading

        self.every_s, self.samples_ms = every_s, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speed-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples_ms.append(_fixed_work())
            self._stop.wait(self.every_s)

    def __enter__(self) -> "SpeedProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def summary(self) -> str:
        """One sentence for the machine line of a RESULTS section."""
        if not self.samples_ms:
            return "machine speed not probed"
        ms = sorted(self.samples_ms)
        return (f"machine speed during the run: the same pure-Python work timed every {self.every_s:g} s took "
                f"{ms[len(ms) // 2]:.1f} ms median ({ms[0]:.1f}–{ms[-1]:.1f}, slowest/fastest "
                f"{ms[-1] / ms[0]:.2f}×, {len(ms)} probes)")


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nWritten by the scripts in benchmarks/.\n"
    stamp = time.strftime("%Y-%m-%d")
    section = f"## {title}\n\nMeasured {stamp}. {body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def _load_process(url: str, body: dict, concurrency: int, seconds: float, max_requests: int, results) -> None:
    import aiohttp

    async def run():
        latencies, errors = [], 0
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def caller(deadline, record):
                nonlocal errors
                while time.perf_counter() < deadline and len(latencies) < max_requests:
                    started = time.perf_counter()
                    async with session.post(url, json=body) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                    if record:
                        latencies.append(time.perf_counter() - started)

            warm = time.perf_counter() + 1.0
            await asyncio.gather(*(caller(warm, False) for _ in range(concurrency)))
            started = time.perf_counter()
            await asyncio.gather(*(caller(started + seconds, True) for _ in range(concurrency)))
            return latencies, errors, time.perf_counter() - started

    latencies, errors, elapsed = asyncio.run(run())
    results.put((latencies, errors, elapsed))


def summarize(latencies: list[float], errors: int, elapsed: float) -> dict:
    """Requests/s, p50 and p99 in ms, errors, of one measured run."""
    latencies = sorted(latencies)

    def pick(q: float) -> float:
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000 if latencies else float("nan")

    return {"rps": len(latencies) / elapsed, "p50": pick(0.5), "p99": pick(0.99), "errors": errors}


def measure_http(url: str, body: dict, concurrency: int, seconds: float, keep_latencies: bool = False) -> dict:
    """Closed loop: ``concurrency`` aiohttp callers in their own process post ``body`` to ``url``
    for ``seconds`` after 1 s of warm-up; requests/s and latency percentiles (:func:`summarize`),
    and with ``keep_latencies`` every request's latency in ms (``latencies_ms``)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_load_process, args=(url, body, concurrency, seconds, 200_000, results))
    process.start()
    latencies, errors, elapsed = results.get(timeout=seconds + 120)
    process.join(30)
    summary = summarize(latencies, errors, elapsed)
    if keep_latencies:
        summary["latencies_ms"] = [latency * 1000 for latency in latencies]
    return summary
