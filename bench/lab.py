"""The benchmark's peers: OpenSSH sshd, vsftpd, ftp-tunnel and `ssh -N -L`, on loopback or
with sshd and vsftpd in a network namespace behind a veth pair (MTU 1500, as between hosts).

Every process started here is recorded and stopped by PID (with its descendants) when the
driver exits, whatever the reason. Readiness is polled with a deadline, never slept for.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Lowest port of the kernel's ephemeral range: passive port ranges go below it, so that no
# listener or client socket the kernel numbers can take a port vsftpd wants.
try:
    EPHEMERAL_LOW = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
except (OSError, ValueError, IndexError):
    EPHEMERAL_LOW = 32768

# OpenSSH's hand-forwarded side binds here (one address per `ssh -L` process, i.e. per
# cipher and variant), vsftpd and ftp-tunnel on 127.0.0.1: the same port numbers (the passive range) must
# be free on both sides of `ssh -L`.
SSH_FWD_IPS = tuple(f"127.0.0.{i}" for i in range(3, 11))


class BenchError(Exception):
    """A peer failed to start or a workload failed."""


class Procs:
    """The processes this driver started, stopped by PID at exit."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def spawn(self, argv: list[str], log: Path, **kw) -> subprocess.Popen:
        out = open(log, "ab")
        try:
            # Own session: a Ctrl-C on the terminal reaches only the driver, which then stops
            # everything in order.
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, **kw,
            )
        finally:
            out.close()
        self.children.append(proc)
        self._record()
        return proc

    def _record(self) -> None:
        """Keeps `$BENCH_PIDFILE` listing the live peers, for scripts/bench's EXIT trap in case
        this driver is killed before its own cleanup runs."""
        path = os.environ.get("BENCH_PIDFILE")
        if path:
            Path(path).write_text("".join(f"{p.pid}\n" for p in self.children))

    def stop(self, proc: subprocess.Popen) -> None:
        """Stops one process and whatever it forked (vsftpd/sshd session processes)."""
        victims = descendants(proc.pid) + [proc.pid]
        for pid in victims:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in victims:
            if pid != proc.pid and Path(f"/proc/{pid}").exists():
                _signal(pid, signal.SIGKILL)
        if proc.poll() is None:
            _signal(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc in self.children:
            self.children.remove(proc)
            self._record()

    def stop_all(self) -> None:
        for proc in reversed(list(self.children)):
            self.stop(proc)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def descendants(pid: int) -> list[int]:
    """All descendants of `pid`, deepest first."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
    out: list[int] = []
    frontier = [pid]
    while frontier:
        nxt = [c for c, p in parent.items() if p in frontier]
        out = nxt + out
        frontier = nxt
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    # After the comm field: state is [0], utime is field 14 of the full line, i.e. [11].
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat: user, nice, system, irq,
    softirq, steal). Around a transfer it is the whole pipeline's cost: the FTP client, the SSH
    client, sshd, the FTP server and the kernel, which share the cores."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _bindable(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
            return True
        except OSError:
            return False


def free_range(count: int, ips: tuple[str, ...], avoid: set[int], start: int = 20000) -> int:
    """First port of `count` consecutive ports bindable on every `ips`, below the ephemeral
    range and outside `avoid`."""
    base = start
    while base + count < EPHEMERAL_LOW:
        ports = range(base, base + count)
        if not avoid.intersection(ports) and all(_bindable(i, p) for i in ips for p in ports):
            return base
        base += count
    raise BenchError(f"no {count} free consecutive ports below {EPHEMERAL_LOW}")


def wait_until(what: str, check, timeout: float, proc: subprocess.Popen | None = None,
               log: Path | None = None):
    """Polls `check()` until it returns something truthy, the deadline passes or `proc` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.02)
    tail = ""
    if log is not None and log.exists():
        tail = "\n  " + "\n  ".join(log.read_text(errors="replace").splitlines()[-15:])
    raise BenchError(f"{what} not ready{tail}")


def port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def ftp_greets(ip: str, port: int) -> bool:
    """The FTP server behind `ip:port` answers with a 220 (a tunnel may accept early)."""
    try:
        with socket.create_connection((ip, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(64).startswith(b"220")
    except OSError:
        return False


@dataclass
class Keys:
    """The client key and the known_hosts naming the host key, for both SSH clients."""
    client_key: Path
    host_key: Path
    known_hosts: Path


def make_keys(work: Path) -> Keys:
    keys = Keys(work / "client_key", work / "host_key", work / "known_hosts")
    for key in (keys.client_key, keys.host_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, stdin=subprocess.DEVNULL)
    (work / "authorized_keys").write_text(Path(f"{keys.client_key}.pub").read_text())
    keys.known_hosts.write_text("")
    return keys


class Netns:
    """A network namespace joined to this one by a veth pair with an MTU of 1500: traffic
    between the two takes the path it would take between two hosts (segmentation, a real
    link's MTU) instead of loopback's 64 KiB one. Deleted (with the pair) by `delete`."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.name = f"ftptb-{pid}"
        self.host_if, self.ns_if = f"ftbh{pid % 100000}", f"ftbn{pid % 100000}"
        subnet = 4 * (pid % 60)
        self.host_ip, self.ns_ip = f"10.231.{subnet}.1", f"10.231.{subnet}.2"
        self.created = False

    def create(self) -> None:
        def ip(*args: str) -> None:
            subprocess.run(["ip", *args], check=True, stdin=subprocess.DEVNULL,
                           capture_output=True)
        ip("netns", "add", self.name)
        self.created = True
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        ip("link", "set", self.ns_if, "netns", self.name)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "mtu", "1500", "up")
        ip("-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        ip("-n", self.name, "link", "set", self.ns_if, "mtu", "1500", "up")
        ip("-n", self.name, "link", "set", "lo", "up")

    def wrap(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def delete(self) -> None:
        if self.created:
            # Deleting the namespace deletes its end of the pair, and with it the other end.
            subprocess.run(["ip", "netns", "del", self.name], stdin=subprocess.DEVNULL,
                           capture_output=True)
            self.created = False


def start_sshd(procs: Procs, work: Path, keys: Keys, cipher: str,
               netns: Netns | None = None) -> tuple[subprocess.Popen, int]:
    """An sshd that offers only `cipher`: both SSH clients then use it, whatever they prefer.
    In `netns`, it listens on the namespace's end of the veth pair."""
    port = free_port()
    listen = netns.ns_ip if netns else "127.0.0.1"
    name = cipher.split("@")[0] + ("_veth" if netns else "")
    cfg = work / f"sshd_{name}.conf"
    cfg.write_text(
        f"ListenAddress {listen}:{port}\n"
        f"HostKey {keys.host_key}\n"
        f"AuthorizedKeysFile {work / 'authorized_keys'}\n"
        "PidFile none\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n"
        "UsePAM no\nAllowTcpForwarding yes\nPermitOpen any\nGatewayPorts no\n"
        "X11Forwarding no\nMaxStartups 100\nMaxSessions 100\nUseDNS no\n"
        f"Ciphers {cipher}\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    log = work / f"sshd_{name}.log"
    argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)]
    proc = procs.spawn(netns.wrap(argv) if netns else argv, log)
    wait_until(f"sshd ({name})", lambda: port_open(listen, port), 10, proc, log)
    trust_alias(keys, listen, port)
    return proc, port


@dataclass
class Vsftpd:
    proc: subprocess.Popen
    port: int
    pasv_min: int
    pasv_max: int


def start_vsftpd(procs: Procs, work: Path, root: Path, name: str, pasv_min: int,
                 pasv_count: int, max_clients: int, netns: Netns | None = None) -> Vsftpd:
    """vsftpd on 127.0.0.1; in `netns`, on every address of the namespace (sshd reaches it on
    127.0.0.1 there, a direct client on the veth address)."""
    port = free_port()
    pasv_max = pasv_min + pasv_count - 1
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    cfg = work / f"vsftpd_{name}.conf"
    listen = "" if netns else "listen_address=127.0.0.1\n"
    cfg.write_text(
        f"listen=YES\nlisten_ipv6=NO\n{listen}"
        f"listen_port={port}\nbackground=NO\n"
        "anonymous_enable=YES\nno_anon_password=YES\nlocal_enable=NO\nwrite_enable=YES\n"
        "anon_upload_enable=YES\nanon_other_write_enable=YES\nanon_world_readable_only=NO\n"
        f"anon_umask=022\nanon_root={root}\n"
        f"pasv_enable=YES\npasv_min_port={pasv_min}\npasv_max_port={pasv_max}\n"
        "port_enable=YES\nconnect_from_port_20=NO\nseccomp_sandbox=NO\n"
        "secure_chroot_dir=/var/run/vsftpd/empty\nftp_username=ftp\n"
        "xferlog_enable=NO\nsyslog_enable=NO\n"
        f"max_clients={max_clients}\nmax_per_ip={max_clients}\n"
        "idle_session_timeout=600\ndata_connection_timeout=600\n"
    )
    log = work / f"vsftpd_{name}.log"
    argv = ["/usr/sbin/vsftpd", str(cfg)]
    proc = procs.spawn(netns.wrap(argv) if netns else argv, log)
    reach = netns.ns_ip if netns else "127.0.0.1"
    wait_until(f"vsftpd {name}", lambda: ftp_greets(reach, port), 10, proc, log)
    return Vsftpd(proc, port, pasv_min, pasv_max)


def ssh_common(keys: Keys, port: int) -> list[str]:
    return ["-p", str(port), "-i", str(keys.client_key),
            "-o", f"UserKnownHostsFile={keys.known_hosts}", "-o", "StrictHostKeyChecking=yes"]


@dataclass
class Tunnel:
    """A running SSH client with an FTP entry point at `host:port`."""
    kind: str  # "ftp-tunnel", "openssh" or "openssh-tty"
    cipher: str
    proc: subprocess.Popen
    host: str
    port: int
    log: Path


def start_ftp_tunnel(procs: Procs, work: Path, binary: Path, keys: Keys, sshd_port: int,
                     cipher: str, ftp: Vsftpd, tag: str, ssh_host: str = "127.0.0.1") -> Tunnel:
    log = work / f"ftp-tunnel_{tag}.log"
    argv = [str(binary), *ssh_common(keys, sshd_port),
            "-L", f"ftp/127.0.0.1:0:127.0.0.1:{ftp.port}", f"root@{ssh_host}"]
    env = dict(os.environ, NO_COLOR="1")
    env.pop("RUST_LOG", None)
    proc = procs.spawn(argv, log, env=env)

    def listening():
        text = ANSI.sub("", log.read_text(errors="replace"))
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        return int(m.group(1)) if m else None

    port = wait_until(f"ftp-tunnel ({tag})", listening, 20, proc, log)
    wait_until(f"FTP through ftp-tunnel ({tag})", lambda: ftp_greets("127.0.0.1", port), 20,
               proc, log)
    return Tunnel("ftp-tunnel", cipher, proc, "127.0.0.1", port, log)


def start_openssh(procs: Procs, work: Path, keys: Keys, sshd_port: int, cipher: str,
                  ftp: Vsftpd, fwd_ip: str, tty: bool, ssh_host: str = "127.0.0.1",
                  tag: str = "") -> Tunnel:
    """`ssh -L` with the control port and every passive port forwarded by hand, listening on
    `fwd_ip`.

    `tty=False` is the usual `ssh -N -L`. OpenSSH sets TCP_NODELAY only on an interactive
    connection (a pty), so `-N` leaves Nagle on and every small control exchange can wait
    ~40 ms for a delayed ACK; `tty=True` runs `ssh -tt -L ... sleep`, OpenSSH at its best for
    small messages, so that no comparison is won against a handicapped peer."""
    kind = "openssh-tty" if tty else "openssh"
    log = work / f"{kind}_{cipher.split('@')[0]}{tag}.log"
    ctrl = free_port(fwd_ip)
    forwards = ["-L", f"{fwd_ip}:{ctrl}:127.0.0.1:{ftp.port}"]
    for p in range(ftp.pasv_min, ftp.pasv_max + 1):
        forwards += ["-L", f"{fwd_ip}:{p}:127.0.0.1:{p}"]
    mode = ["-tt"] if tty else ["-N", "-T"]
    command = ["exec sleep 2147483647"] if tty else []
    argv = ["ssh", "-F", "/dev/null", *mode, "-c", cipher, *ssh_common(keys, sshd_port),
            "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
            "-o", "Compression=no", *forwards, f"root@{ssh_host}", *command]
    proc = procs.spawn(argv, log)
    wait_until(f"{kind} ({cipher})", lambda: ftp_greets(fwd_ip, ctrl), 20, proc, log)
    return Tunnel(kind, cipher, proc, fwd_ip, ctrl, log)


def start_delay(procs: Procs, work: Path, delay_ms: float, pairs: list[tuple[str, int, str, int]],
                name: str) -> subprocess.Popen:
    """bench/delay.py relaying each (listen ip, port, target ip, port) with `delay_ms` each way."""
    log = work / f"delay_{name}.log"
    argv = [sys.executable, str(Path(__file__).with_name("delay.py")), "--delay-ms", str(delay_ms),
            *(f"{li}:{lp}={ti}:{tp}" for li, lp, ti, tp in pairs)]
    proc = procs.spawn(argv, log)
    wait_until(f"delay relay {name}", lambda: "ready" in log.read_text(errors="replace"), 10,
               proc, log)
    return proc


def trust_alias(keys: Keys, host: str, port: int) -> None:
    """Adds [host]:port to known_hosts with the benchmark's host key (a relay in front of sshd)."""
    host_pub = Path(f"{keys.host_key}.pub").read_text().split()
    with open(keys.known_hosts, "a") as kh:
        kh.write(f"[{host}]:{port} {host_pub[0]} {host_pub[1]}\n")


def transfer_lines(tunnel: Tunnel) -> int:
    """How many 'data transfer finished' lines ftp-tunnel has logged so far."""
    return log_count(tunnel.log, "data transfer finished")


def log_count(log: Path, needle: str) -> int:
    return log.read_text(errors="replace").count(needle)
