#!/usr/bin/env python3
"""Small-file probe: where each process's time goes, round by round.

Runs 500 x 4 KiB RETRs in one ftplib session through each given ftp-tunnel build and through
OpenSSH `ssh -tt -L` (passive range forwarded by hand), alternating, against one sshd and one
vsftpd on loopback, and prints per round: the wall time, per-file latency percentiles, and per
file the CPU of the SSH client, sshd, vsftpd and the Python client, the machine's busy time, and
the SSH client's page faults and context switches (from /proc). With --perf FILE it records
the first build with `perf record -g -k CLOCK_MONOTONIC` over all rounds and prints each
round's monotonic start and end, for `perf report --time START,END`.

This is how the slow small-file phases were traced to bind() to port 0 (README, Performance).
Not part of scripts/bench: it compares builds and processes, not products.

    python3 bench/small_probe.py --binary target/release/ftp-tunnel --binary /tmp/old-ftp-tunnel
"""

from __future__ import annotations

import argparse
import ftplib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab  # noqa: E402
from lab import Procs  # noqa: E402

CIPHER = "aes128-gcm@openssh.com"


def tree(pid: int) -> list[int]:
    return [pid, *lab.descendants(pid)]


def cpu(pids: list[int]) -> float:
    return sum(lab.cpu_seconds(p) for p in pids)


def counters(pid: int) -> tuple[int, int, int, int]:
    """Minor and major faults, voluntary and involuntary context switches of all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    voluntary = involuntary = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    involuntary += int(line.split()[1])
        except OSError:
            pass  # a thread that ended meanwhile
    return int(fields[7]), int(fields[9]), voluntary, involuntary


def one_round(name: str, host: str, port: int, client_pid: int, names: list[str],
              sshd: subprocess.Popen, ftpd: subprocess.Popen) -> str:
    per_file = len(names)
    latencies = []
    faults0, mono0 = counters(client_pid), time.monotonic()
    client0, machine0 = lab.cpu_seconds(client_pid), lab.machine_busy_seconds()
    with ftplib.FTP() as ftp:
        ftp.connect(host, port, timeout=30)
        ftp.login()
        sshd0, ftpd0, py0 = cpu(tree(sshd.pid)), cpu(tree(ftpd.pid)), time.process_time()
        start = time.perf_counter()
        for remote in names:
            t0 = time.perf_counter()
            ftp.retrbinary(f"RETR {remote}", lambda _: None)
            latencies.append((time.perf_counter() - t0) * 1000)
        total = time.perf_counter() - start
        sshd1, ftpd1, py1 = cpu(tree(sshd.pid)), cpu(tree(ftpd.pid)), time.process_time()
        ftp.quit()
    client1, machine1 = lab.cpu_seconds(client_pid), lab.machine_busy_seconds()
    faults1, mono1 = counters(client_pid), time.monotonic()
    latencies.sort()
    ms = lambda seconds: 1000 * seconds / per_file  # noqa: E731
    events = "/".join(f"{(b - a) / per_file:.2f}" for a, b in zip(faults0, faults1))
    return (f"{name:12s} {total:6.3f} s  p50 {latencies[per_file // 2]:.2f} "
            f"p90 {latencies[per_file * 9 // 10]:.2f} max {latencies[-1]:.1f} ms  "
            f"cpu ms/file: client {ms(client1 - client0):.3f} sshd {ms(sshd1 - sshd0):.3f} "
            f"vsftpd {ms(ftpd1 - ftpd0):.3f} python {ms(py1 - py0):.3f} "
            f"machine {ms(machine1 - machine0):.3f}  client minflt/majflt/vcsw/ivcsw per file "
            f"{events}  monotonic {mono0:.3f},{mono1:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", action="append", required=True, type=Path,
                        help="an ftp-tunnel build (repeat to compare builds)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--perf", type=Path, help="record the first build with perf here")
    args = parser.parse_args()

    procs = Procs()
    work = Path(tempfile.mkdtemp(prefix="ftp-tunnel-probe-"))
    perf = None
    try:
        root = work / "root"
        (root / "small").mkdir(parents=True)
        os.chmod(root, 0o755)
        names = []
        for i in range(args.files):
            name = f"small/f{i:04d}.bin"
            (root / name).write_bytes(os.urandom(4096))
            names.append(name)
        keys = lab.make_keys(work)
        sshd, sshd_port = lab.start_sshd(procs, work, keys, CIPHER)
        fwd_ip = lab.SSH_FWD_IPS[1]
        base = lab.free_range(20, ("127.0.0.1", fwd_ip), set())
        vsftpd = lab.start_vsftpd(procs, work, root, "probe", base, 20, 50)
        clients = []
        for i, binary in enumerate(args.binary):
            t = lab.start_ftp_tunnel(procs, work, binary.resolve(), keys, sshd_port, CIPHER,
                                     vsftpd, f"build{i}")
            clients.append((f"build{i}", t))
        t = lab.start_openssh(procs, work, keys, sshd_port, CIPHER, vsftpd, fwd_ip, True)
        clients.append(("ssh -tt", t))
        if args.perf:
            perf = subprocess.Popen(["perf", "record", "-q", "-g", "-k", "CLOCK_MONOTONIC",
                                     "-p", str(clients[0][1].proc.pid), "-o", str(args.perf)])
            time.sleep(1)  # perf attaches asynchronously; nothing to poll for
        for rnd in range(1, args.rounds + 1):
            for name, t in clients:
                print(f"r{rnd} " + one_round(name, t.host, t.port, t.proc.pid, names, sshd,
                                             vsftpd.proc), flush=True)
    finally:
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
