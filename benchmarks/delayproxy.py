"""A loopback TCP proxy that models a link with a round-trip time (default 50 ms), for the benchmarks.

Honest to what a client sees over a real link of that round-trip time (RTT):

- every byte, in either direction, arrives RTT/2 after it was written (order kept; the link's
  bandwidth is not limited: SMTP's small lines and messages are latency-bound);
- a new connection reaches the server only when the TCP handshake would have completed there:
  the client's SYN takes RTT/2, the SYN-ACK RTT/2 back, the client's ACK RTT/2 again, so the
  proxy connects to the server 1.5 RTT after accepting, and the server's greeting reaches the
  client 2 RTT (about 100 ms at 50 ms RTT) after it started connecting. (The client's own
  ``connect()`` returns at once on loopback instead of after 1 RTT; an SMTP client waits for
  the greeting anyway, so that changes nothing it can do earlier.)

Run as a process (so that it shares no GIL with the client being measured)::

    python benchmarks/delayproxy.py UPSTREAM_PORT [--rtt 0.050]

It prints its own port on the first line of standard output and runs until its standard input
closes; the command "turns" prints how many round trips clients have waited for (a client
sending after it last received something), "reset" sets that count to 0. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable

HOST = "127.0.0.1"


TURNS = [0]
"""Round trips waited for, over all connections: each time a client sends after it last heard
from the server (a request that had to wait for an answer), counted on the client's side."""


class _Turns:
    """Per connection: which side spoke last, as seen by the client."""

    def __init__(self) -> None:
        self.heard = False  # the client received something since it last sent

    def client_sent(self) -> None:
        if self.heard:
            TURNS[0] += 1
            self.heard = False

    def client_heard(self) -> None:
        self.heard = True


class _Link:
    """One direction of a connection: bytes written now are delivered ``delay`` seconds later."""

    def __init__(self, delay: float, on_carry: Callable[[], None] = lambda: None) -> None:
        self.delay = delay
        self.on_carry = on_carry  # called when bytes enter this direction
        self.on_deliver: Callable[[], None] = lambda: None  # ... and when they come out
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def carry(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if data:
                self.on_carry()
            self.queue.put_nowait((loop.time() + self.delay, data))
            if not data:
                return

    async def deliver(self, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await self.queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                self.on_deliver()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()


async def _serve(upstream: int, rtt: float) -> tuple[asyncio.AbstractServer, int]:
    half = rtt / 2

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter):  # type: ignore[no-untyped-def]
        sock = client_writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        turns = _Turns()
        up_link, down_link = _Link(half, turns.client_sent), _Link(half)
        down_link.on_deliver = turns.client_heard
        # What the client sends before the server is reachable waits in the up link's queue,
        # stamped with its own send time (+ RTT/2), as it would on the wire.
        carry_up = asyncio.ensure_future(up_link.carry(client_reader))
        try:
            await asyncio.sleep(3 * half)  # SYN, SYN-ACK, ACK: the server accepts now
            server_reader, server_writer = await asyncio.open_connection(HOST, upstream)
        except (OSError, asyncio.CancelledError):
            carry_up.cancel()
            client_writer.close()
            return
        up = server_writer.get_extra_info("socket")
        if up is not None:
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(asyncio.CancelledError):  # the proxy is shutting down
            await asyncio.gather(
                carry_up,
                up_link.deliver(server_writer),
                down_link.carry(server_reader),
                down_link.deliver(client_writer),
                return_exceptions=True,
            )

    server = await asyncio.start_server(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    return server, port


async def _main(upstream: int, rtt: float) -> None:
    server, port = await _serve(upstream, rtt)
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    # Commands on standard input: "turns" prints the round trips counted so far, "reset" sets
    # them to 0; the proxy runs until its standard input closes.
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip() == "turns":
            print(TURNS[0], flush=True)
        elif line.strip() == "reset":
            TURNS[0] = 0
            print(0, flush=True)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream", type=int, help="the server's port on 127.0.0.1")
    parser.add_argument("--rtt", type=float, default=0.050, help="round-trip time in seconds")
    args = parser.parse_args()
    asyncio.run(_main(args.upstream, args.rtt))


if __name__ == "__main__":
    main()
