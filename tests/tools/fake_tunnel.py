#!/usr/bin/env python3
"""A stand-in for ftp-tunnel, built from OpenSSH's ssh (a ControlMaster plus `-O forward`).

It exists to check the end-to-end harness against the CLI contract while the real binary
is not available: run the e2e tests with FTP_TUNNEL_BIN pointing here. It is not a product
and takes shortcuts (one SSH forward per data connection, no pooling, IPv4 server side).
"""
import asyncio, os, re, shutil, signal, subprocess, sys, tempfile, time

def log(level, msg):
    print(f"{time.strftime('%H:%M:%S')} {level} fake_tunnel: {msg}", file=sys.stderr, flush=True)

def parse_args(argv):
    port, user, keys, opts, specs, host = None, None, [], [], [], None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-p", "-l", "-i", "-o", "-L"):
            if i + 1 >= len(argv):
                raise SystemExit(f"error: {a} needs a value")
            v = argv[i + 1]
            i += 2
            if a == "-p": port = v
            elif a == "-l": user = v
            elif a == "-i": keys.append(v)
            elif a == "-o": opts.append(v)
            else: specs.append(v)
            continue
        if a.startswith("-"):
            raise SystemExit(f"error: unknown option {a}")
        host = a
        i += 1
    if host is None:
        raise SystemExit("error: no SSH host given")
    return port, user, keys, opts, specs, host

SPEC = re.compile(r"^(?:(ftp|tcp)/)?(?:(\[[^\]]+\]|[^:\[\]]+):)?(\d+):(\[[^\]]+\]|[^:]+):(\d+)$")

class Tunnel:
    def __init__(self, ssh_base, ctl):
        self.ssh_base, self.ctl = ssh_base, ctl
        self.sessions = 0
        self.forwards = 0

    async def mux(self, *args):
        p = await asyncio.create_subprocess_exec(
            "ssh", *self.ssh_base, "-S", self.ctl, *args, "x",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await p.communicate()
        if p.returncode != 0:
            raise RuntimeError(err.decode().strip())
        return out.decode()

    async def local_forward(self, host, port):
        free = free_port()
        await self.mux("-O", "forward", "-L", f"127.0.0.1:{free}:{host}:{port}")
        return free

    async def remote_forward(self, target_port):
        out = await self.mux("-O", "forward", "-R", f"127.0.0.1:0:127.0.0.1:{target_port}")
        return int(out.split()[-1])

    async def pump(self, r, w):
        n = 0
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                n += len(b)
                w.write(b)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                w.close()
            except Exception:
                pass
        return n

    async def data_proxy(self, session, mode, connect, connected=None):
        """Listens on 127.0.0.1:0 for one connection, joins it to connect(); logs the bytes."""
        self.forwards += 1
        fwd = self.forwards

        async def on_conn(cr, cw):
            start = time.monotonic()
            sr, sw = await connect()
            if connected is not None and not connected.done():
                connected.set_result(None)
            # For passive, the accepted side is the FTP client; for active it is the server.
            if mode == "passive":
                up, down = await asyncio.gather(self.pump(cr, sw), self.pump(sr, cw))
            else:
                down, up = await asyncio.gather(self.pump(cr, sw), self.pump(sr, cw))
            ms = int((time.monotonic() - start) * 1000)
            log("INFO", f"data transfer finished session={session} forward={fwd} mode={mode} "
                        f"to_server={up} to_client={down} ms={ms}")
            server.close()

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        return server.sockets[0].getsockname()[1]

    async def control(self, cr, cw, fwd_port):
        self.sessions += 1
        session = self.sessions
        sr, sw = await asyncio.open_connection("127.0.0.1", fwd_port)
        client_ip = cw.get_extra_info("peername")[0]
        state = {"pending": None}

        async def c2s():
            while True:
                line = await cr.readline()
                if not line:
                    break
                text = line.decode("latin-1").rstrip("\r\n")
                verb = text.split(" ")[0].upper()
                if verb in ("PORT", "EPRT"):
                    try:
                        if verb == "PORT":
                            n = [int(x) for x in text[5:].split(",")]
                            ip, port = ".".join(map(str, n[:4])), n[4] * 256 + n[5]
                        else:
                            parts = text[5:].split(text[5])
                            ip, port = parts[2], int(parts[3])
                        if ip in ("0.0.0.0", "::"):
                            ip = client_ip
                        if ip != client_ip and not (ip in ("127.0.0.1", "::1") and client_ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1")):
                            cw.write(b"500 Illegal PORT: not the client's address\r\n")
                            await cw.drain()
                            continue
                        async def connect(ip=ip, port=port):
                            return await asyncio.open_connection(ip, port)
                        state["pending"] = asyncio.get_running_loop().create_future()
                        proxy = await self.data_proxy(session, "active", connect, state["pending"])
                        r = await self.remote_forward(proxy)
                    except Exception as e:
                        cw.write(f"425 cannot open the data forward: {e}\r\n".replace("\n", " ").rstrip().encode() + b"\r\n")
                        await cw.drain()
                        continue
                    if verb == "PORT":
                        line = f"PORT 127,0,0,1,{r // 256},{r % 256}\r\n".encode()
                    else:
                        line = f"EPRT |1|127.0.0.1|{r}|\r\n".encode()
                sw.write(line)
                await sw.drain()
            sw.close()

        async def s2c():
            while True:
                line = await sr.readline()
                if not line:
                    break
                text = line.decode("latin-1").rstrip("\r\n")
                # Active mode: the server's 1xx must not overtake the data connection.
                if text[:1] == "1" and state["pending"] is not None:
                    try:
                        await asyncio.wait_for(state["pending"], 10)
                    except asyncio.TimeoutError:
                        pass
                    state["pending"] = None
                if text.startswith("227 ") or text.startswith("229 "):
                    try:
                        if text.startswith("227"):
                            n = [int(x) for x in re.findall(r"\d+", text[4:])][-6:]
                            if len(n) != 6 or any(v > 255 for v in n):
                                raise ValueError("bad 227")
                            port = n[4] * 256 + n[5]
                        else:
                            m = re.search(r"\((.)\1\1(\d+)\1\)", text)
                            port = int(m.group(2)) if m else 0
                            if not 0 < port < 65536:
                                raise ValueError("bad 229")
                        lp = await self.local_forward("127.0.0.1", port)
                        async def connect(lp=lp):
                            return await asyncio.open_connection("127.0.0.1", lp)
                        q = await self.data_proxy(session, "passive", connect)
                    except Exception as e:
                        cw.write(f"425 unusable passive reply from the server ({e})\r\n".encode())
                        await cw.drain()
                        continue
                    if text.startswith("227"):
                        line = f"227 Entering Passive Mode (127,0,0,1,{q // 256},{q % 256})\r\n".encode()
                    else:
                        line = f"229 Entering Extended Passive Mode (|||{q}|)\r\n".encode()
                cw.write(line)
                await cw.drain()
            cw.close()

        await asyncio.gather(c2s(), s2c(), return_exceptions=True)

def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

async def main():
    try:
        port, user, keys, opts, specs, host = parse_args(sys.argv[1:])
        parsed = []
        for s in specs:
            m = SPEC.match(s)
            if not m:
                raise SystemExit(f"error: bad -L spec {s!r}")
            parsed.append(m.groups())
    except SystemExit as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    d = tempfile.mkdtemp(prefix="fake-tunnel-")
    ctl = os.path.join(d, "ctl")
    base = ["-F", "/dev/null", "-o", "BatchMode=yes"]
    if port: base += ["-p", port]
    if user: base += ["-l", user]
    for k in keys: base += ["-i", k]
    for o in opts:
        if o.split("=")[0] in ("UserKnownHostsFile", "StrictHostKeyChecking"):
            base += ["-o", o]
    master = await asyncio.create_subprocess_exec(
        "ssh", *base, "-M", "-S", ctl, "-N", "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=3", host,
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t = Tunnel(base, ctl)
    deadline = time.monotonic() + 10
    while not os.path.exists(ctl):
        if master.returncode is not None or time.monotonic() > deadline:
            err = (await master.stderr.read()).decode().strip().replace("\n", "; ")
            log("ERROR", f"ssh connection failed: {err}")
            shutil.rmtree(d, ignore_errors=True)
            sys.exit(255)
        try:
            await asyncio.wait_for(master.wait(), 0.05)
        except asyncio.TimeoutError:
            pass
    servers = []
    for kind, bind, lport, thost, tport in parsed:
        fwd = await t.local_forward(thost.strip("[]"), int(tport))
        bind = (bind or "127.0.0.1").strip("[]")
        srv = await asyncio.start_server(lambda r, w, f=fwd: t.control(r, w, f), bind, int(lport))
        servers.append(srv)
        a = srv.sockets[0].getsockname()
        shown = f"[{a[0]}]" if ":" in a[0] else a[0]
        log("INFO", f"listening on {shown}:{a[1]} ({kind or 'tcp'}/ -> {thost}:{tport})")
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(0))
    waiter = asyncio.ensure_future(master.wait())
    await asyncio.wait([stop, waiter], return_when=asyncio.FIRST_COMPLETED)
    if stop.done():
        master.terminate()
        shutil.rmtree(d, ignore_errors=True)
        os._exit(0)
    log("ERROR", "ssh connection lost")
    shutil.rmtree(d, ignore_errors=True)
    os._exit(255)

asyncio.run(main())
