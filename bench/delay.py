#!/usr/bin/env python3
"""A TCP relay that delays every byte by a fixed time in each direction: a stand-in for a
network link with latency, for kernels without `netem`.

    delay.py --delay-ms 1 127.0.0.8:2121=127.0.0.1:21 127.0.0.8:30000=127.0.0.1:30000 ...

Each LISTEN=TARGET pair accepts connections on LISTEN and connects each to TARGET. Bytes keep
their order; each chunk is written `delay` after it was read, so a round trip through the
relay costs 2 x delay plus the relay's own time. Unlike a real link it ends TCP on both sides:
it acknowledges what it receives at once instead of after the delay, and bandwidth is not
limited (the benchmark uses it only for many small files). Prints "ready" once every listener
is up. Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
import time

# Linux's TCP_QUICKACK (12); Python names it only on some builds.
QUICKACK = getattr(socket, "TCP_QUICKACK", 12)


async def delayed_copy(reader: asyncio.StreamReader, reader_sock: socket.socket,
                       writer: asyncio.StreamWriter, delay: float) -> None:
    """Copies reader to writer, each chunk `delay` seconds after it arrived, then half-closes."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        while True:
            chunk = await reader.read(65536)
            # ACK at once: a delayed ACK from the relay would hold the sender's next small
            # segment (Nagle) for up to 40 ms, which no link with this latency does. A real
            # link would delay the ACK as well; see bench/README.md for what that changes.
            try:
                reader_sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:
                pass
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                return

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    try:
        await asyncio.gather(receive(), send())
    except (ConnectionError, OSError):
        writer.close()


async def serve_pair(listen: tuple[str, int], target: tuple[str, int], delay: float):
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*target)
        except OSError:
            client_w.close()
            return
        client_s, server_s = (w.get_extra_info("socket") for w in (client_w, server_w))
        for sock in (client_s, server_s):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(delayed_copy(client_r, client_s, server_w, delay),
                             delayed_copy(server_r, server_s, client_w, delay),
                             return_exceptions=True)
        for w in (client_w, server_w):
            w.close()

    return await asyncio.start_server(handle, *listen, reuse_address=True)


def parse_addr(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    parser.add_argument("pairs", nargs="+", metavar="LISTEN=TARGET")
    args = parser.parse_args()
    servers = []
    for pair in args.pairs:
        listen, target = pair.split("=", 1)
        servers.append(await serve_pair(parse_addr(listen), parse_addr(target),
                                        args.delay_ms / 1000))
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
