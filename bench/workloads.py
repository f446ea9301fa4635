"""The measured workloads: bulk transfers (curl), many small files (ftplib), many idle sessions
and parallel transfers (asyncio + curl), and a slow reader (ftplib)."""

from __future__ import annotations

import asyncio
import ftplib
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import BenchError, Tunnel, cpu_seconds, machine_busy_seconds, rss_kib

MIB = 1 << 20
GIB = 1 << 30


@dataclass
class Endpoint:
    """Where an FTP client connects, and the SSH client process carrying it (None: direct)."""
    name: str  # "ftp-tunnel", "openssh", "openssh-tty" or "direct"
    host: str
    port: int
    tunnel: Tunnel | None = None

    @property
    def pid(self) -> int | None:
        return self.tunnel.proc.pid if self.tunnel else None


@dataclass
class Transfer:
    bytes: int
    seconds: float
    cpu: float | None  # CPU seconds of the SSH client process during the transfer
    machine_cpu: float  # CPU seconds of the whole machine (every process) during the transfer

    @property
    def mib_s(self) -> float:
        return self.bytes / MIB / self.seconds

    @property
    def cpu_per_gib(self) -> float | None:
        return None if self.cpu is None else self.cpu / (self.bytes / GIB)

    @property
    def machine_cpu_per_gib(self) -> float:
        return self.machine_cpu / (self.bytes / GIB)


def curl_argv(ep: Endpoint, op: str, mode: str, remote: str, local: Path | None) -> list[str]:
    url = f"ftp://{ep.host}:{ep.port}/{remote}"
    argv = ["curl", "-sS", "--fail", "--max-time", "1800", "--connect-timeout", "20"]
    if mode == "active":
        argv += ["-P", "-"]
    if op == "RETR":
        argv += ["-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]
    else:
        argv += ["-T", str(local), "-w", "%{size_upload} %{time_total}", url]
    return argv


def _parse_curl(out: subprocess.CompletedProcess | tuple, what: str) -> tuple[int, float]:
    stdout, stderr, code = out
    if code != 0:
        raise BenchError(f"curl {what} failed ({code}): {stderr.strip()}")
    size, secs = stdout.split()
    return int(size), float(secs)


def bulk(ep: Endpoint, op: str, mode: str, remote: str, local: Path | None,
         expect: int) -> Transfer:
    """One RETR (to /dev/null) or STOR (from tmpfs) with curl; CPU of the SSH client around it."""
    before = cpu_seconds(ep.pid) if ep.pid else None
    machine_before = machine_busy_seconds()
    proc = subprocess.run(curl_argv(ep, op, mode, remote, local), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    machine_after = machine_busy_seconds()
    after = cpu_seconds(ep.pid) if ep.pid else None
    size, secs = _parse_curl((proc.stdout, proc.stderr, proc.returncode),
                             f"{op} {mode} via {ep.name}")
    if size != expect:
        raise BenchError(f"{op} {mode} via {ep.name}: {size} bytes, expected {expect}")
    cpu = None if before is None else after - before
    return Transfer(size, secs, cpu, machine_after - machine_before)


def small_files(ep: Endpoint, names: list[str]) -> float:
    """Seconds for RETRs of all `names` in one FTP session (passive; one data channel each)."""
    got = 0

    def sink(chunk: bytes) -> None:
        nonlocal got
        got += len(chunk)

    start = time.perf_counter()
    with ftplib.FTP() as ftp:
        ftp.connect(ep.host, ep.port, timeout=30)
        ftp.login()
        for name in names:
            ftp.retrbinary(f"RETR {name}", sink)
        ftp.quit()
    elapsed = time.perf_counter() - start
    if got != 4096 * len(names):
        raise BenchError(f"small files via {ep.name}: {got} bytes")
    return elapsed


# ----- many sessions --------------------------------------------------------------------

async def _reply(reader: asyncio.StreamReader) -> bytes:
    """One complete (possibly multi-line) FTP reply."""
    first = await reader.readline()
    if len(first) < 4:
        raise BenchError(f"short reply {first!r}")
    line = first
    if first[3:4] == b"-":
        while not (line[:3] == first[:3] and line[3:4] == b" "):
            line = await reader.readline()
            if not line:
                raise BenchError("connection closed inside a reply")
    return first


async def _login(host: str, port: int, gate: asyncio.Semaphore):
    async with gate:
        reader, writer = await asyncio.open_connection(host, port)
        if not (await _reply(reader)).startswith(b"220"):
            raise BenchError("no 220 greeting")
        writer.write(b"USER anonymous\r\n")
        reply = await _reply(reader)
        if reply.startswith(b"331"):
            writer.write(b"PASS bench@example.invalid\r\n")
            reply = await _reply(reader)
        if not reply.startswith(b"230"):
            raise BenchError(f"login refused: {reply!r}")
        return reader, writer


async def _idle_sessions(ep: Endpoint, count: int, measure) -> tuple[float, object]:
    gate = asyncio.Semaphore(64)
    start = time.perf_counter()
    results = await asyncio.gather(*(_login(ep.host, ep.port, gate) for _ in range(count)),
                                   return_exceptions=True)
    opened = time.perf_counter() - start
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    try:
        if errors:
            raise BenchError(f"{len(errors)} of {count} sessions failed: {errors[0]!r}")
        # Every session answers once more before measuring: all of them are fully set up.
        for reader, writer in conns:
            writer.write(b"NOOP\r\n")
        for reader, writer in conns:
            await _reply(reader)
        value = measure()
    finally:
        for _, writer in conns:
            writer.close()
        for _, writer in conns:
            try:
                await writer.wait_closed()
            except OSError:
                pass
    return opened, value


def idle_sessions(ep: Endpoint, count: int) -> dict:
    """RSS of the tunnel process idle and with `count` logged-in idle sessions."""
    pid = ep.pid
    # One session first, so that lazily created state (pool, caches) is not counted per session.
    asyncio.run(_idle_sessions(ep, 1, lambda: None))
    idle = rss_kib(pid)
    opened, busy = asyncio.run(_idle_sessions(ep, count, lambda: rss_kib(pid)))
    return {"sessions": count, "rss_idle_kib": idle, "rss_busy_kib": busy,
            "kib_per_session": (busy - idle) / count, "open_seconds": opened,
            "rss_after_kib": rss_kib(pid)}


def parallel_retr(ep: Endpoint, count: int, remote: str, expect: int) -> dict:
    """`count` concurrent RETRs (one curl each): aggregate MiB/s and slowest/fastest."""
    argv = curl_argv(ep, "RETR", "passive", remote, None)
    start = time.perf_counter()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True) for _ in range(count)]
    try:
        outs = [(*p.communicate(), p.returncode) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = time.perf_counter() - start
    speeds = []
    for out in outs:
        size, secs = _parse_curl(out, f"parallel RETR via {ep.name}")
        if size != expect:
            raise BenchError(f"parallel RETR via {ep.name}: {size} bytes")
        speeds.append(size / MIB / secs)
    return {"count": count, "aggregate_mib_s": count * expect / MIB / wall,
            "fairness": min(speeds) / max(speeds), "slowest_mib_s": min(speeds),
            "fastest_mib_s": max(speeds)}


# ----- slow reader ----------------------------------------------------------------------

def _noop_rtts(ftp: ftplib.FTP, seconds: float, pace: float = 0.02) -> list[float]:
    rtts = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        ftp.voidcmd("NOOP")
        rtts.append((time.perf_counter() - t) * 1000)
        time.sleep(pace)  # pacing the probe, not waiting for anything
    return rtts


def slow_reader(ep: Endpoint, remote: str, stall: float) -> dict:
    """Session A opens a big RETR, reads 64 KiB and stops reading for `stall` seconds;
    session B meanwhile measures NOOP round trips on its control connection."""
    b = ftplib.FTP()
    b.connect(ep.host, ep.port, timeout=30)
    b.login()
    rss_before = rss_kib(ep.pid) if ep.pid else None
    baseline = _noop_rtts(b, 1.0)
    a = ftplib.FTP()
    a.connect(ep.host, ep.port, timeout=30)
    a.login()
    a.voidcmd("TYPE I")
    data = a.transfercmd(f"RETR {remote}")
    try:
        read = 0
        while read < 64 * 1024:
            chunk = data.recv(65536)
            if not chunk:
                raise BenchError("data connection closed early")
            read += len(chunk)
        stalled = _noop_rtts(b, stall)
        rss_during = rss_kib(ep.pid) if ep.pid else None
    finally:
        data.close()
        a.close()
        try:
            b.quit()
        except (OSError, ftplib.Error):
            b.close()
    return {"baseline_median_ms": statistics.median(baseline),
            "median_ms": statistics.median(stalled), "max_ms": max(stalled),
            "probes": len(stalled), "rss_before_kib": rss_before, "rss_during_kib": rss_during}
