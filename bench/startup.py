"""Startup cost: time from exec until the first forward accepts connections, and the idle
RSS once it does, for ftp-tunnel and OpenSSH's `ssh -N -L` doing the same (one local
forward), side by side, medians of several rounds.

usage: python3 bench/startup.py FTP_TUNNEL_BINARY [ROUNDS]
Prints a table and one JSON line (`startup {...}`) for scripts/bench to pick up.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import lab  # noqa: E402


def measure(procs: lab.Procs, argv: list[str], log: Path, port: int) -> tuple[float, int]:
    start = time.monotonic()
    proc = procs.spawn(argv, log)
    lab.wait_until(argv[0], lambda: lab.port_open("127.0.0.1", port), 20, proc, log)
    elapsed = time.monotonic() - start
    # Idle RSS: as soon as the forward accepts connections.
    rss = lab.rss_kib(proc.pid)
    procs.stop(proc)
    return elapsed, rss


def main() -> int:
    binary = Path(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    procs = lab.Procs()
    results: dict[str, dict[str, list[float]]] = {"ftp-tunnel": {"ms": [], "rss": []},
                                                   "ssh -N -L": {"ms": [], "rss": []}}
    try:
        with tempfile.TemporaryDirectory(prefix="ftpt-startup-") as tmp:
            work = Path(tmp)
            keys = lab.make_keys(work)
            _, sshd_port = lab.start_sshd(procs, work, keys, "aes128-gcm@openssh.com")
            target = sshd_port  # any port the SSH server's side has open will do
            for rnd in range(rounds):
                for kind in results:
                    port = lab.free_port()
                    log = work / f"{kind.replace(' ', '_')}_{rnd}.log"
                    if kind == "ftp-tunnel":
                        argv = [str(binary), *lab.ssh_common(keys, sshd_port),
                                "-L", f"ftp/127.0.0.1:{port}:127.0.0.1:{target}", "root@127.0.0.1"]
                    else:
                        argv = ["ssh", "-F", "/dev/null", "-N", "-T", *lab.ssh_common(keys, sshd_port),
                                "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                                "-L", f"127.0.0.1:{port}:127.0.0.1:{target}", "root@127.0.0.1"]
                    ms, rss = measure(procs, argv, log, port)
                    results[kind]["ms"].append(ms * 1000)
                    results[kind]["rss"].append(rss)
    finally:
        procs.stop_all()
    summary = {kind: {"startup_ms": statistics.median(v["ms"]),
                      "idle_rss_kib": statistics.median(v["rss"])} for kind, v in results.items()}
    ft, ssh = summary["ftp-tunnel"], summary["ssh -N -L"]
    print(f"{'':12} {'exec→listening':>16} {'idle RSS':>10}")
    for kind, s in summary.items():
        print(f"{kind:12} {s['startup_ms']:13.1f} ms {s['idle_rss_kib'] / 1024:7.1f} MiB")
    print(f"{'ratio':12} {ft['startup_ms'] / ssh['startup_ms']:15.2f}x "
          f"{ft['idle_rss_kib'] / ssh['idle_rss_kib']:9.2f}x")
    print("startup " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
