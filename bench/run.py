#!/usr/bin/env python3
"""Side-by-side benchmark driver: ftp-tunnel vs OpenSSH `ssh -N -L` (hand-forwarded passive
range) vs direct FTP, against real sshd and vsftpd on loopback and, for the bulk and small-file
tests, again with sshd and vsftpd behind a veth pair (MTU 1500). See bench/README.md.

Normally started by `scripts/bench`, which installs what is needed and builds the binary.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab  # noqa: E402
import report  # noqa: E402
import workloads as wl  # noqa: E402
from lab import BenchError, Procs  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CRITERION_BENCHES = ["native/pasv_227_pair", "native/noop_200_pair", "native/session_setup",
                     "component/noop_200_pair", "component/pasv_227_refused_pair",
                     "component/session_setup"]


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise SystemExit(f"{name} must be an integer")


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


class Config:
    def __init__(self) -> None:
        self.bulk_mib = env_int("BENCH_BULK_MIB", 1024)
        self.rounds = env_int("BENCH_ROUNDS", 3)
        self.small = env_int("BENCH_SMALL_FILES", 500)
        self.sessions = env_int("BENCH_SESSIONS", 1000)
        self.par = env_int("BENCH_PAR", 50)
        self.par_mib = env_int("BENCH_PAR_MIB", 100)
        self.stall = env_int("BENCH_STALL_S", 10)
        self.pasv_ports = env_int("BENCH_PASV_PORTS", 20)
        self.link_ms = float(os.environ.get("BENCH_LINK_MS", "1"))
        self.ciphers = os.environ.get(
            "BENCH_CIPHERS", "aes128-gcm@openssh.com chacha20-poly1305@openssh.com").split()
        self.skip = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
        # "veth" in BENCH_SKIP leaves out the second setup.
        target = Path(os.environ.get("BENCH_TARGET_DIR", REPO / "target"))
        self.target = target
        self.out = Path(os.environ.get("BENCH_OUT", target / "bench"))
        self.binary = Path(os.environ.get("FTP_TUNNEL_BIN", target / "release" / "ftp-tunnel"))

    def as_dict(self) -> dict:
        return {k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v)
                for k, v in self.__dict__.items()}


def machine() -> dict:
    model, cores, aes = "?", os.cpu_count(), False
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "?":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and " aes " in f" {line.split(':', 1)[1]} ":
            aes = True
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    return {"cpu": model, "cores": cores, "aes_ni": aes, "kernel": platform.release(),
            "openssh": ssh}


def criterion(cfg: Config, res: report.Results) -> dict | None:
    """Runs the control-path criterion bench and reads its medians (ns); None if it failed
    (the rest of the benchmark still runs)."""
    log("control path: cargo bench -p ftp-tunnel --bench control_path")
    done = subprocess.run(["cargo", "bench", "-q", "-p", "ftp-tunnel", "--bench", "control_path"],
                          cwd=REPO, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    if done.returncode != 0:
        res.notes.append(f"control-path bench failed (cargo exit {done.returncode}): no rows")
        return None
    medians = {}
    for name in CRITERION_BENCHES:
        est = cfg.target / "criterion" / name / "new" / "estimates.json"
        if est.exists():
            medians[name] = json.loads(est.read_text())["median"]["point_estimate"]
    return medians


def make_files(root: Path, cfg: Config) -> list[str]:
    (root / "pub").mkdir(parents=True)
    (root / "small").mkdir()
    os.chmod(root, 0o755)
    os.chmod(root / "pub", 0o777)
    block = os.urandom(16 << 20)
    for name, mib in (("bulk.bin", cfg.bulk_mib), ("par.bin", cfg.par_mib)):
        with open(root / name, "wb") as f:
            left = mib << 20
            while left:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
    names = []
    for i in range(cfg.small):
        name = f"small/f{i:04d}.bin"
        (root / name).write_bytes(os.urandom(4096))
        names.append(name)
    return names


def bulk_round(cfg: Config, res: report.Results, rnd: int, eps: list[wl.Endpoint],
               root: Path, test: str = "bulk") -> None:
    size = cfg.bulk_mib << 20
    for ep in eps:
        for op in ("RETR", "STOR"):
            for mode in ("passive", "active"):
                if ep.name.startswith("openssh") and mode == "active":
                    continue  # impossible through plain ssh -L: no remote forward per PORT
                remote = "bulk.bin" if op == "RETR" else f"pub/up-{ep.name}.bin"
                before = lab.transfer_lines(ep.tunnel) if ep.name == "ftp-tunnel" else 0
                t = wl.bulk(ep, op, mode, remote, root / "bulk.bin", size)
                if op == "STOR":
                    got = (root / remote).stat().st_size
                    (root / remote).unlink()
                    if got != size:
                        raise BenchError(f"STOR via {ep.name}: server has {got} bytes")
                if ep.name == "ftp-tunnel":
                    # The data really crossed the tunnel's own data forward.
                    lab.wait_until("ftp-tunnel transfer log",
                                   lambda: lab.transfer_lines(ep.tunnel) > before, 10)
                cipher = ep.tunnel.cipher if ep.tunnel else ""
                name = f"{op} {mode}"
                res.add(test, ep.name, cipher, f"{name} MiB/s", t.mib_s, "MiB/s", rnd)
                if t.cpu_per_gib is not None:
                    res.add(test, ep.name, cipher, f"{name} CPU s/GiB", t.cpu_per_gib,
                            "s/GiB", rnd)
                res.add(test, ep.name, cipher, f"{name} machine CPU s/GiB",
                        t.machine_cpu_per_gib, "s/GiB", rnd)
                log(f"  {test} round {rnd} {ep.name:11} {cipher.split('@')[0]:17} {name:12} "
                    f"{t.mib_s:8.1f} MiB/s"
                    + ("" if t.cpu_per_gib is None else f"  cpu {t.cpu_per_gib:.2f} s/GiB")
                    + f"  machine {t.machine_cpu_per_gib:.2f} s/GiB")


def small_over_link(cfg: Config, res: report.Results, procs: Procs, work: Path, keys: lab.Keys,
                    sshd_port: int, ftp: lab.Vsftpd, names: list[str]) -> None:
    """The small-file test again with a link of `link_ms` each way between the client's side
    and the server's side (bench/delay.py, this kernel may have no netem): the SSH clients
    reach sshd through it, the direct client reaches vsftpd (control and passive ports)
    through it. What users behind a real network see."""
    c = cfg.ciphers[0]
    relay_ip, direct_ip, fwd_ip = "127.0.0.21", "127.0.0.22", "127.0.0.23"
    ssh_port = lab.free_port(relay_ip)
    ctrl_port = lab.free_port(direct_ip)
    pairs = [(relay_ip, ssh_port, "127.0.0.1", sshd_port),
             (direct_ip, ctrl_port, "127.0.0.1", ftp.port)]
    pairs += [(direct_ip, p, "127.0.0.1", p) for p in range(ftp.pasv_min, ftp.pasv_max + 1)]
    relay = lab.start_delay(procs, work, cfg.link_ms, pairs, "link")
    lab.trust_alias(keys, relay_ip, ssh_port)
    t = lab.start_ftp_tunnel(procs, work, cfg.binary, keys, ssh_port, c, ftp, "link",
                             ssh_host=relay_ip)
    o = lab.start_openssh(procs, work, keys, ssh_port, c, ftp, fwd_ip, True, ssh_host=relay_ip,
                          tag="_link")
    eps = [wl.Endpoint("direct", direct_ip, ctrl_port), wl.Endpoint("ftp-tunnel", t.host, t.port, t),
           wl.Endpoint(o.kind, o.host, o.port, o)]
    for rnd in range(1, cfg.rounds + 1):
        for ep in eps:
            secs = wl.small_files(ep, names)
            cipher = c if ep.tunnel else ""
            res.add("small-link", ep.name, cipher, "seconds", secs, "s", rnd,
                    files=len(names), link_ms=cfg.link_ms)
            log(f"  small files over a {2 * cfg.link_ms:g} ms RTT link, round {rnd} "
                f"{ep.name:11} {secs:.3f} s")
    for tunnel in (t, o):
        procs.stop(tunnel.proc)
    procs.stop(relay)


def small_rounds(cfg: Config, res: report.Results, eps: list[wl.Endpoint], names: list[str],
                 test: str = "small") -> None:
    if "small-nagle" in cfg.skip:
        # `ssh -N -L` pays a delayed-ACK stall per exchange (~30 s a round): left out on request.
        eps = [ep for ep in eps if ep.name != "openssh"]
    for rnd in range(1, cfg.rounds + 1):
        for ep in eps:
            secs = wl.small_files(ep, names)
            cipher = ep.tunnel.cipher if ep.tunnel else ""
            res.add(test, ep.name, cipher, "seconds", secs, "s", rnd, files=len(names))
            log(f"  {test} files round {rnd} {ep.name:11} {cipher.split('@')[0]:17} "
                f"{secs:.3f} s")


def over_veth(cfg: Config, res: report.Results, procs: Procs, work: Path, keys: lab.Keys,
              root: Path, names: list[str], fwd_ips: dict, avoid: set[int]) -> None:
    """The bulk and small-file tests again with sshd and vsftpd in a network namespace behind
    a veth pair with an MTU of 1500: the SSH client and the FTP client stay here, as on
    another host. Loopback's 64 KiB MTU flatters whoever makes fewer, larger writes."""
    ns = lab.Netns()
    try:
        ns.create()
        log(f"veth: {ns.host_ip} <-> {ns.ns_ip} (namespace {ns.name}, MTU 1500)")
        base = lab.free_range(cfg.pasv_ports, ("127.0.0.1", *fwd_ips.values()), avoid)
        ftp = lab.start_vsftpd(procs, work, root, "veth", base, cfg.pasv_ports, 50, netns=ns)
        eps_all = [wl.Endpoint("direct", ns.ns_ip, ftp.port)]
        started = []
        per_cipher = {}
        for c in cfg.ciphers:
            sshd_proc, port = lab.start_sshd(procs, work, keys, c, netns=ns)
            started.append(sshd_proc)
            t = lab.start_ftp_tunnel(procs, work, cfg.binary, keys, port, c, ftp,
                                     f"{c.split('@')[0]}_veth", ssh_host=ns.ns_ip)
            eps = [wl.Endpoint("ftp-tunnel", t.host, t.port, t)]
            started.append(t.proc)
            for tty in (False, True):
                o = lab.start_openssh(procs, work, keys, port, c, ftp, fwd_ips[c, tty], tty,
                                      ssh_host=ns.ns_ip, tag="_veth")
                eps.append(wl.Endpoint(o.kind, o.host, o.port, o))
                started.append(o.proc)
            per_cipher[c] = eps
            eps_all += eps
        if "bulk" not in cfg.skip:
            for rnd in range(1, cfg.rounds + 1):
                log(f"veth bulk round {rnd}/{cfg.rounds}")
                bulk_round(cfg, res, rnd, eps_all[:1], root, "bulk-veth")
                for c in cfg.ciphers:
                    bulk_round(cfg, res, rnd, per_cipher[c], root, "bulk-veth")
        if "small" not in cfg.skip:
            small_rounds(cfg, res, eps_all, names, "small-veth")
        for proc in reversed(started + [ftp.proc]):
            procs.stop(proc)
    finally:
        ns.delete()


def main() -> int:
    cfg = Config()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(cfg.sessions * 4 + 1024, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    except ValueError:
        pass
    if not cfg.binary.exists():
        raise SystemExit(f"no ftp-tunnel binary at {cfg.binary}; build it or set FTP_TUNNEL_BIN")
    res = report.Results()
    meta = machine()
    meta["config"] = cfg.as_dict()
    # Everything shares the machine's cores: a busy machine skews every number.
    meta["loadavg_start"] = os.getloadavg()
    control = None
    if "control" not in cfg.skip:
        control = criterion(cfg, res)

    procs = Procs()
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="ftpt-bench-", dir=shm))
    os.chmod(work, 0o755)
    # SIGTERM/SIGINT end the driver through the finally below, which stops every peer.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run_all(cfg, res, procs, work)
    except BenchError as e:
        log(f"benchmark failed: {e}")
        res.notes.append(f"failed: {e}")
        return_code = 1
    else:
        return_code = 0
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    meta["loadavg_end"] = os.getloadavg()
    rows = report.build_rows(res, cfg.ciphers, control)
    table = report.render(rows)
    files = report.write_files(cfg.out, res, rows, meta, control)
    print(f"\nftp-tunnel benchmark: {meta['cpu']}, {meta['cores']} cores, "
          f"AES-NI {'yes' if meta['aes_ni'] else 'no'}; {meta['openssh']}")
    load = ", ".join(f"{meta[k][0]:.1f}" for k in ("loadavg_start", "loadavg_end"))
    print(f"bulk {cfg.bulk_mib} MiB x {cfg.rounds} rounds; medians; "
          f"1-min load average at start, end: {load}\n")
    print(table)
    for note in res.notes:
        print(f"note: {note}")
    print("\nwritten: " + ", ".join(str(f) for f in files))
    return return_code


def run_all(cfg: Config, res: report.Results, procs: Procs, work: Path) -> None:
    root = work / "root"
    log(f"creating files under {work} ({cfg.bulk_mib} MiB, {cfg.par_mib} MiB, "
        f"{cfg.small} x 4 KiB)")
    small_names = make_files(root, cfg)
    keys = lab.make_keys(work)
    sshd = {c: lab.start_sshd(procs, work, keys, c)[1] for c in cfg.ciphers}
    if 2 * len(cfg.ciphers) > len(lab.SSH_FWD_IPS):
        raise BenchError(f"at most {len(lab.SSH_FWD_IPS) // 2} ciphers")
    fwd_ips = {(c, tty): lab.SSH_FWD_IPS[2 * i + tty]
               for i, c in enumerate(cfg.ciphers) for tty in (False, True)}
    small_base = lab.free_range(cfg.pasv_ports, ("127.0.0.1", *fwd_ips.values()), set())
    narrow = lab.start_vsftpd(procs, work, root, "narrow", small_base, cfg.pasv_ports, 50)
    wide_count = max(200, cfg.par * 4)
    wide_base = lab.free_range(wide_count, ("127.0.0.1",),
                               set(range(small_base, small_base + cfg.pasv_ports)),
                               start=small_base + cfg.pasv_ports)
    wide = lab.start_vsftpd(procs, work, root, "wide", wide_base, wide_count,
                            cfg.sessions + cfg.par + 50)
    direct = wl.Endpoint("direct", "127.0.0.1", narrow.port)
    per_cipher: dict[str, list[wl.Endpoint]] = {}
    for c in cfg.ciphers:
        tag = c.split("@")[0]
        eps = []
        try:
            t = lab.start_ftp_tunnel(procs, work, cfg.binary, keys, sshd[c], c, narrow, tag)
            eps.append(wl.Endpoint("ftp-tunnel", t.host, t.port, t))
        except BenchError as e:
            res.notes.append(f"ftp-tunnel with only {c} offered: {e}".splitlines()[0])
            log(str(e))
        for tty in (False, True):
            t = lab.start_openssh(procs, work, keys, sshd[c], c, narrow, fwd_ips[c, tty], tty)
            eps.append(wl.Endpoint(t.kind, t.host, t.port, t))
        per_cipher[c] = eps

    if "bulk" not in cfg.skip:
        for rnd in range(1, cfg.rounds + 1):
            log(f"bulk round {rnd}/{cfg.rounds}")
            bulk_round(cfg, res, rnd, [direct], root)
            for c in cfg.ciphers:
                bulk_round(cfg, res, rnd, per_cipher[c], root)

    if "small" not in cfg.skip:
        small_rounds(cfg, res, [direct] + [e for c in cfg.ciphers for e in per_cipher[c]],
                     small_names)

    if "veth" not in cfg.skip and not cfg.skip >= {"bulk", "small"}:
        over_veth(cfg, res, procs, work, keys, root, small_names, fwd_ips,
                  set(range(small_base, small_base + cfg.pasv_ports))
                  | set(range(wide_base, wide_base + wide_count)))

    if "link" not in cfg.skip and cfg.link_ms > 0:
        small_over_link(cfg, res, procs, work, keys, sshd[cfg.ciphers[0]], narrow, small_names)

    if cfg.skip >= {"scale", "slow"}:
        return
    c0 = cfg.ciphers[0]
    scale_tunnel = lab.start_ftp_tunnel(procs, work, cfg.binary, keys, sshd[c0], c0, wide,
                                        "wide")
    ft = wl.Endpoint("ftp-tunnel", scale_tunnel.host, scale_tunnel.port, scale_tunnel)
    wide_direct = wl.Endpoint("direct", "127.0.0.1", wide.port)
    if "scale" not in cfg.skip:
        log(f"scale: {cfg.sessions} idle sessions through one tunnel")
        s = wl.idle_sessions(ft, cfg.sessions)
        log(f"  {s}")
        res.add("scale", "ftp-tunnel", "", "KiB per idle session", s["kib_per_session"], "KiB",
                sessions=cfg.sessions)
        res.add("scale", "ftp-tunnel", "", "open seconds", s["open_seconds"], "s")
        res.add("scale", "ftp-tunnel", "", "RSS idle KiB", s["rss_idle_kib"], "KiB")
        res.add("scale", "ftp-tunnel", "", "RSS busy KiB", s["rss_busy_kib"], "KiB")
        res.add("scale", "ftp-tunnel", "", "RSS after close KiB", s["rss_after_kib"], "KiB")
        for ep in (ft, wide_direct):
            log(f"scale: {cfg.par} parallel RETRs of {cfg.par_mib} MiB via {ep.name}")
            p = wl.parallel_retr(ep, cfg.par, "par.bin", cfg.par_mib << 20)
            log(f"  {p}")
            for k in ("aggregate_mib_s", "fairness", "slowest_mib_s", "fastest_mib_s"):
                metric = {"aggregate_mib_s": "aggregate MiB/s"}.get(k, k)
                res.add("parallel", ep.name, "", metric, p[k], "", count=cfg.par)
    if "slow" not in cfg.skip:
        ssh_eps = [e for e in per_cipher[c0] if e.name.startswith("openssh")]
        for ep in (ft, *ssh_eps, direct):
            log(f"slow reader: {cfg.stall} s stall via {ep.name}")
            s = wl.slow_reader(ep, "bulk.bin", cfg.stall)
            log(f"  {s}")
            for k, metric in (("baseline_median_ms", "baseline median ms"),
                              ("median_ms", "median ms"), ("max_ms", "max ms")):
                res.add("slow", ep.name, "", metric, s[k], "ms")
            if s["rss_during_kib"] is not None:
                res.add("slow", ep.name, "", "RSS growth during stall KiB",
                        s["rss_during_kib"] - s["rss_before_kib"], "KiB")


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    log(f"done in {time.monotonic() - started:.0f} s")
    sys.exit(code)
