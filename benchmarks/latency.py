"""The benchmarks of issue 16: throughput over a 50 ms link (delay proxy), against the lab and a real Postfix, and pacing.

Every ratio compares smtp_magic with hand-written smtplib code in the same run, over the same
link: ``send_many`` vs a raw smtplib loop on one connection, and vs a loop that reconnects for
every message. The round trips are counted by the proxy (a client sending after it last heard
from the server), so "one round trip per message in steady state" is measured, not assumed.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from cases import EHLO_NAME, HOST, Lab, Results, Row, small_messages

from smtp_magic import Settings
from smtp_magic.bulk import send_many

HERE = Path(__file__).resolve().parent


class Proxy:
    """benchmarks/delayproxy.py in its own process, in front of 127.0.0.1:``upstream``."""

    def __init__(self, upstream: int, rtt: float = 0.050) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "delayproxy.py"), str(upstream), "--rtt", str(rtt)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def _ask(self, command: str) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def turns(self) -> int:
        """Round trips clients waited for since the last reset."""
        return self._ask("turns")

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)


@dataclass
class Target:
    """A server to measure against: how smtp_magic and smtplib reach it through a proxy."""

    name: str
    settings: Callable[[int], Settings]  # port -> Settings
    context: ssl.SSLContext | None  # STARTTLS with this context, or plaintext
    login: tuple[str, str] | None
    clear: Callable[[], None] = lambda: None


def _stdlib_session(target: Target, port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP(HOST, port, local_hostname=EHLO_NAME, timeout=30)
    if target.context is not None:
        smtp.starttls(context=target.context)
    if target.login is not None:
        smtp.login(*target.login)
    return smtp


def stdlib_loop(target: Target, port: int, messages: list[EmailMessage]) -> None:
    """One connection, send_message in a loop: what one writes by hand."""
    with _stdlib_session(target, port) as smtp:
        for message in messages:
            smtp.send_message(message)


def stdlib_reconnecting(target: Target, port: int, messages: list[EmailMessage]) -> None:
    """A connection (and STARTTLS and login) for every message, as some libraries do."""
    for message in messages:
        with _stdlib_session(target, port) as smtp:
            smtp.send_message(message)


def over_link(
    target: Target, upstream: int, results: Results, *, n: int, n_reconnect: int, rtt: float
) -> None:
    """send_many vs the two smtplib loops, all through one delay proxy; round trips counted."""
    proxy = Proxy(upstream, rtt)
    try:
        messages = small_messages(n)
        settings = target.settings(proxy.port)
        timings: dict[str, float] = {}
        turns: dict[str, int] = {}

        def measure(name: str, action: Callable[[], Any]) -> None:
            target.clear()
            proxy.reset()
            start = time.perf_counter()
            action()
            timings[name] = time.perf_counter() - start
            turns[name] = proxy.turns()

        def ours(batch: list[EmailMessage]) -> None:
            report = send_many(batch, settings, progress=False)
            if len(report.accepted) != len(batch) or report.connections != 1:
                raise RuntimeError(f"send_many did not deliver all over one connection: {report}")

        measure("one", lambda: ours(messages[:1]))
        measure("ours", lambda: ours(messages))
        measure("stdlib", lambda: stdlib_loop(target, proxy.port, messages))
        measure(
            "reconnect", lambda: stdlib_reconnecting(target, proxy.port, messages[:n_reconnect])
        )
    finally:
        proxy.close()
    rate = {
        "ours": n / timings["ours"],
        "stdlib": n / timings["stdlib"],
        "reconnect": n_reconnect / timings["reconnect"],
    }
    per_message = (turns["ours"] - turns["one"]) / (n - 1)
    versus_loop = rate["ours"] / rate["stdlib"]
    versus_reconnect = rate["ours"] / rate["reconnect"]
    where = f"{target.name}, {rtt * 1000:.0f} ms RTT"
    results.rows += [
        Row(
            f"send_many, {n} msgs, {where} (msg/s)",
            f"{rate['ours']:.1f}",
            f"{rate['stdlib']:.1f} stdlib loop",
            versus_loop,
            ">= 3.0",
            versus_loop >= 3.0,
            f"round trips: {turns['ours']} ours, {turns['stdlib']} stdlib",
        ),
        Row(
            f"send_many vs reconnecting, {where} (msg/s)",
            f"{rate['ours']:.1f}",
            f"{rate['reconnect']:.2f} reconnecting",
            versus_reconnect,
            ">= 10",
            versus_reconnect >= 10,
            f"{n_reconnect} msgs reconnecting, {turns['reconnect'] / n_reconnect:.1f} round trips each",
        ),
        Row(
            f"round trips per message, steady state, {target.name}",
            f"{per_message:.2f}",
            f"{turns['stdlib'] / n:.2f} stdlib loop",
            None,
            "1 (counted)",
            round(per_message, 2) <= 1.0,
            f"({turns['ours']} - {turns['one']} for 1 message) / {n - 1}",
        ),
    ]
    results.key[f"{target.name} {rtt * 1000:.0f}ms: vs loop"] = f"{versus_loop:.1f}x"
    results.key[f"{target.name} {rtt * 1000:.0f}ms: vs reconnecting"] = f"{versus_reconnect:.0f}x"
    results.key[f"{target.name}: round trips/msg"] = f"{per_message:.2f}"


def lab_target(lab: Lab) -> Target:
    return Target(
        "lab 587 (STARTTLS, AUTH)",
        lambda port: lab.settings(587, port=port),
        lab.context,
        (lab.info["username"], lab.info["password"]),
        lab.clear,
    )


def postfix_target(postfix: Any) -> Target:
    """A Postfix (benchmarks/postfix.py) as a submission service: STARTTLS, then AUTH."""
    username, password = postfix.login
    return Target(
        "Postfix (STARTTLS, AUTH)",
        lambda port: Settings(
            HOST,
            port=port,
            security="starttls",
            cafile=postfix.cafile,
            username=username,
            password=password,
            sender="demo@lab.localhost",
            local_hostname=EHLO_NAME,
            timeout=30.0,
        ),
        ssl.create_default_context(cafile=postfix.cafile),
        postfix.login,
    )


def merge(results: Results, *, dry_rows: int, send_rows: int, postfix: Any | None) -> None:
    """%%sendmail --to-each over a large table (mergechild.py): dry-run time, peak RSS."""
    import json

    def child(*args: str, password: str = "") -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, str(HERE / "mergechild.py"), *args],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "SMTP_PASSWORD": password} if password else None,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    mib = 2**20
    dry = child(str(dry_rows), "dry")
    results.rows.append(
        Row(
            f"merge --dry-run, {dry_rows:,} rows (s)",
            f"{dry['seconds']:.2f}",
            "",
            None,
            "< 2 s",
            dry["seconds"] < 2.0,
            f"peak RSS {dry['peak_rss'] / mib:.0f} MiB (IPython, pandas and the table: "
            f"{dry['baseline_rss'] / mib:.0f} MiB before the cell)",
        )
    )
    results.key["merge dry run"] = f"{dry['seconds']:.2f} s"
    if postfix is None:
        return
    username, password = postfix.login
    sent = child(
        str(send_rows), "send", str(postfix.port), str(postfix.cafile), username, password=password
    )
    growth = (sent["peak_rss"] - sent["baseline_rss"]) / mib
    results.rows.append(
        Row(
            f"merge sent, {send_rows:,} rows to Postfix (peak RSS MiB)",
            f"{sent['peak_rss'] / mib:.0f}",
            f"{sent['baseline_rss'] / mib:.0f} before",
            None,
            "< 200",
            sent["peak_rss"] / mib < 200 and sent["accepted"] == send_rows,
            f"{sent['accepted']} accepted in {sent['seconds']:.0f} s; +{growth:.0f} MiB during "
            f"the send ({growth * 1024 / send_rows * 1000 / 1024:.1f} MiB per 1,000 messages)",
        )
    )
    results.key["merge peak RSS"] = f"{sent['peak_rss'] / mib:.0f} MiB for {send_rows:,} rows"


# -- pacing ---------------------------------------------------------------------------------------


def pacing(results: Results, *, rate: str, per_minute: float, count: int) -> None:
    """send_many(rate=...) against a server that notes when each MAIL arrives; the rate achieved."""
    import socket

    from aiosmtpd.controller import Controller

    starts: list[float] = []
    lock = threading.Lock()

    class Handler:
        async def handle_MAIL(
            self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
        ) -> str:
            with lock:
                starts.append(time.monotonic())
            envelope.mail_from = address
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK queued"

    sock = socket.socket()
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]

    class Bound(Controller):
        def _create_server(self) -> Any:
            return self.loop.create_server(self._factory_invoker, sock=sock)

    controller = Bound(Handler(), hostname=HOST, port=port, server_hostname="pace.localhost")
    controller.start()
    try:
        settings = Settings(
            HOST, port=port, security="plain", sender="demo@lab.localhost", local_hostname=EHLO_NAME
        )
        report = send_many(small_messages(count), settings, rate=rate, progress=False)
    finally:
        controller.stop(no_assert=True)
    if len(report.accepted) != count:
        raise RuntimeError(f"the pacing run did not deliver everything: {report}")
    span = starts[-1] - starts[0]
    achieved = (len(starts) - 1) / span * 60
    error = achieved / per_minute - 1
    results.rows.append(
        Row(
            f"rate={rate!r}, {count} msgs over {span:.0f} s (msg/min)",
            f"{achieved:.2f}",
            f"{per_minute:g} asked",
            achieved / per_minute,
            "within 5%",
            abs(error) <= 0.05,
            "MAIL arrival times at the server, first to last",
        )
    )
    results.key[f"rate {rate}"] = f"{error * 100:+.2f}%"
