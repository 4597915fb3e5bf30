"""The measurements of benchmarks/run.py: each one runs smtp_magic and its baseline in the same run."""

from __future__ import annotations

import json
import smtplib
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from smtp_magic import Settings, compose, send
from smtp_magic.bulk import send_many
from smtp_magic.smtp.session import forget_auto_choices

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
EHLO_NAME = "localhost"  # both clients: smtplib's default, socket.getfqdn(), may query DNS


@dataclass
class Row:
    """One line of the result table."""

    name: str
    ours: str
    baseline: str
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    key: dict[str, str] = field(default_factory=dict)
    import_ok: bool = True


class Lab:
    """The lab servers, in their own process (labproc.py), so they do not share our GIL."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "labproc.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise RuntimeError("the lab process did not start (see its error output above)")
        self.info: dict[str, Any] = json.loads(line)
        self.ports = {int(k): v for k, v in self.info["ports"].items()}
        self.context = ssl.create_default_context(cafile=self.info["cafile"])

    def settings(self, role: int = 587, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "port": self.ports[role],
            "security": "starttls" if role != 465 else "tls",
            "username": self.info["username"],
            "password": self.info["password"],
            "sender": "demo@lab.localhost",
            "cafile": self.info["cafile"],
            "local_hostname": EHLO_NAME,
        }
        values.update(overrides)
        return Settings(HOST, **values)

    def clear(self) -> None:
        """Empty the lab's mailboxes, so that every round meets the same server state."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("clear\n")
        self.process.stdin.flush()
        self.process.stdout.readline()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)


def small_messages(n: int) -> list[EmailMessage]:
    # Plain text: one part, so flattening is cheap and our own overhead shows the most. A From
    # header: without one, smtplib.send_message would send MAIL FROM:<None>.
    return [
        compose(
            to="bob@example.org",
            sender="demo@lab.localhost",  # both clients then send the same header block
            subject=f"bulk {i}",
            body=f"Message {i}.\n",
            format="text",
        )
        for i in range(n)
    ]


# -- the stdlib baselines -------------------------------------------------------------------


def stdlib_one_connection(lab: Lab, messages: list[EmailMessage]) -> None:
    """What one writes by hand: one verified STARTTLS connection, login, send_message in a loop."""
    with smtplib.SMTP(HOST, lab.ports[587], local_hostname=EHLO_NAME, timeout=10) as smtp:
        smtp.starttls(context=lab.context)
        smtp.login(lab.info["username"], lab.info["password"])
        for message in messages:
            smtp.send_message(message)


def stdlib_reconnecting(lab: Lab, messages: list[EmailMessage]) -> None:
    """A loop that connects, upgrades and logs in for every message, as some libraries do."""
    for message in messages:
        stdlib_single(lab, message)


def stdlib_single(lab: Lab, message: EmailMessage) -> None:
    """The raw sequence: connect, STARTTLS (verified), login, send, QUIT."""
    with smtplib.SMTP(HOST, lab.ports[587], local_hostname=EHLO_NAME, timeout=10) as smtp:
        smtp.starttls(context=lab.context)
        smtp.login(lab.info["username"], lab.info["password"])
        smtp.send_message(message)


# -- the measurements -----------------------------------------------------------------------


def _timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) taken by ``action``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(lab: Lab, results: Results, *, n: int, n_reconnect: int, rounds: int) -> None:
    messages = small_messages(n)
    settings = lab.settings(587)
    # Warm up both paths (imports, TLS context caches, the server's first connections).
    send_many(messages[:10], settings, progress=False)
    stdlib_one_connection(lab, messages[:10])
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "stdlib": [], "reconnect": []}

    def ours() -> None:
        report = send_many(messages, settings, progress=False)
        if len(report.accepted) != n or report.connections != 1:
            raise RuntimeError(f"send_many did not deliver all over one connection: {report}")

    plan = [
        ("ours", ours),
        ("stdlib", lambda: stdlib_one_connection(lab, messages)),
        ("reconnect", lambda: stdlib_reconnecting(lab, messages[:n_reconnect])),
    ]
    for round_number in range(rounds):
        order = plan if round_number % 2 == 0 else plan[::-1]
        for name, action in order:
            lab.clear()
            runs[name].append(_timed(action))
    counts = {"ours": n, "stdlib": n, "reconnect": n_reconnect}
    rate = {k: statistics.median(counts[k] / w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c / counts[k] * 1e6 for _, c in v) for k, v in runs.items()}
    ratio = rate["ours"] / rate["stdlib"]
    cpu_ratio = cpu["ours"] / cpu["stdlib"]
    results.rows.append(
        Row(
            f"send_many, {n} msgs, one connection (msg/s)",
            f"{rate['ours']:.0f}",
            f"{rate['stdlib']:.0f} stdlib loop",
            ratio,
            ">= 1.0",
            ratio >= 1.0,
            f"median of {rounds}, no delay (loopback)",
        )
    )
    results.rows.append(
        Row(
            "client CPU per message, same (us)",
            f"{cpu['ours']:.0f}",
            f"{cpu['stdlib']:.0f} stdlib loop",
            cpu_ratio,
            "<= 1.0",
            cpu_ratio <= 1.0,
            "process CPU time (user + system) / messages, median of the rounds",
        )
    )
    versus = rate["ours"] / rate["reconnect"]
    results.rows.append(
        Row(
            "send_many vs reconnect per message (msg/s)",
            f"{rate['ours']:.0f}",
            f"{rate['reconnect']:.0f} reconnecting",
            versus,
            "report",
            None,
            f"{n_reconnect} msgs per reconnecting round; CPU {cpu['reconnect']:.0f} us/msg",
        )
    )
    results.key["send_many/stdlib"] = f"{ratio:.2f}"
    results.key["send_many/reconnecting"] = f"{versus:.1f}x"
    results.key["CPU/msg vs stdlib"] = f"{cpu_ratio:.2f}"


def single_send(lab: Lab, results: Results, *, runs: int) -> None:
    message = small_messages(1)[0]
    settings = lab.settings(587)
    send(message, settings)  # warm up
    stdlib_single(lab, message)
    ours: list[float] = []
    raw: list[float] = []
    for i in range(runs):
        pair = [(ours, lambda: send(message, settings)), (raw, lambda: stdlib_single(lab, message))]
        for bucket, action in pair if i % 2 == 0 else pair[::-1]:
            bucket.append(_timed(action)[0])
    a, b = statistics.median(ours), statistics.median(raw)
    ratio = a / b
    results.rows.append(
        Row(
            "one send() vs raw smtplib (ms)",
            f"{a * 1000:.2f}",
            f"{b * 1000:.2f} smtplib",
            ratio,
            "<= 1.10",
            ratio <= 1.10,
            f"median of {runs} each, interleaved; connect+STARTTLS+AUTH+send+QUIT",
        )
    )
    results.key["send()/smtplib"] = f"{ratio:.2f}"


def _round_trips(settings: Settings, message: EmailMessage) -> tuple[float, int, int]:
    """(seconds, client lines, notes) of one send()."""
    start = time.perf_counter()
    report = send(message, settings)
    seconds = time.perf_counter() - start
    client = sum(1 for line in report.transcript if line.direction == "C")
    notes = sum(1 for line in report.transcript if line.direction == "*")
    return seconds, client, notes


def security_auto(lab: Lab, results: Results, *, runs: int, greeting_wait: float) -> None:
    message = small_messages(1)[0]
    standard = lab.info.get("standard_port")
    if standard:
        where = f"port {standard} (in STANDARD_PORTS)"
        explicit = lab.settings(587, port=standard, cafile=lab.info["standard_cafile"])
        auto = lab.settings(587, port=standard, cafile=lab.info["standard_cafile"], security="auto")
        forget_auto_choices()
    else:
        # No standard port to bind: the lab's 587 role on its ephemeral port, primed once, so
        # that auto uses its cached choice, which is what it does on a standard port.
        where = f"lab 587 role, primed ({lab.info.get('standard_note')})"
        explicit = lab.settings(587)
        auto = lab.settings(587, security="auto")
        forget_auto_choices()
        send(message, auto)
    timings: dict[str, list[float]] = {"auto": [], "explicit": []}
    lines: dict[str, set[int]] = {"auto": set(), "explicit": set()}
    for i in range(runs):
        pair = [("auto", auto), ("explicit", explicit)]
        for name, settings in pair if i % 2 == 0 else pair[::-1]:
            seconds, client, _notes = _round_trips(settings, message)
            timings[name].append(seconds)
            lines[name].add(client)
    a, e = statistics.median(timings["auto"]), statistics.median(timings["explicit"])
    same = lines["auto"] == lines["explicit"]
    results.rows.append(
        Row(
            "auto vs starttls, standard port (ms)",
            f"{a * 1000:.2f}",
            f"{e * 1000:.2f} explicit",
            a / e,
            "same lines",
            same,
            f"{where}; client lines {sorted(lines['auto'])} vs {sorted(lines['explicit'])}",
        )
    )
    results.key["auto extra round trips"] = (
        "0" if same else f"{sorted(lines['auto'])} vs {sorted(lines['explicit'])}"
    )

    # A non-standard implicit-TLS port (the lab's 465 role on an ephemeral port): the first
    # auto send waits greeting_wait for a greeting that never comes, then caches "tls".
    forget_auto_choices()
    auto_tls = lab.settings(465, security="auto", greeting_wait=greeting_wait)
    explicit_tls = lab.settings(465)
    first = _round_trips(auto_tls, message)[0]
    later: list[float] = []
    direct: list[float] = []
    for i in range(runs):
        pair = [(later, auto_tls), (direct, explicit_tls)]
        for bucket, settings in pair if i % 2 == 0 else pair[::-1]:
            bucket.append(_round_trips(settings, message)[0])
    after, d = statistics.median(later), statistics.median(direct)
    results.rows.append(
        Row(
            "auto, non-standard TLS port: 1st send (ms)",
            f"{first * 1000:.0f}",
            f"{d * 1000:.2f} explicit tls",
            first / d,
            "~greeting_wait",
            None,
            f"greeting_wait={greeting_wait:g} s, waited once",
        )
    )
    results.rows.append(
        Row(
            "auto, non-standard TLS port: later (ms)",
            f"{after * 1000:.2f}",
            f"{d * 1000:.2f} explicit tls",
            after / d,
            "no wait",
            after < greeting_wait / 2,
            f"median of {runs} each, the cached choice",
        )
    )
    # A non-standard STARTTLS port: the greeting arrives at once, so even the first send waits
    # for nothing.
    forget_auto_choices()
    first_starttls = _round_trips(lab.settings(587, security="auto"), message)[0]
    results.rows.append(
        Row(
            "auto, non-standard STARTTLS port: 1st (ms)",
            f"{first_starttls * 1000:.2f}",
            f"{e * 1000:.2f} explicit",
            first_starttls / e,
            "no wait",
            first_starttls < greeting_wait / 2,
            "the greeting itself answers the question",
        )
    )
    results.key["auto 1st/later on TLS port"] = f"{first * 1000:.0f}/{after * 1000:.1f} ms"


_IMPORT_PROBE = """
import json, sys, time
start = time.perf_counter()
import smtp_magic
seconds = time.perf_counter() - start
import smtp_magic.bulk  # send_many: re-exported by the package
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'IPython', 'ipywidgets', 'aiosmtpd'})
print(json.dumps({'seconds': seconds, 'heavy': heavy}))
"""


def import_time(results: Results, *, runs: int) -> None:
    seconds: list[float] = []
    heavy: set[str] = set()
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
        )
        data = json.loads(out.stdout)
        seconds.append(data["seconds"])
        heavy.update(data["heavy"])
    median = statistics.median(seconds)
    results.import_ok = not heavy
    results.rows.append(
        Row(
            "import smtp_magic (ms)",
            f"{median * 1000:.0f}",
            "",
            None,
            "no IPython etc.",
            not heavy,
            f"median of {runs} fresh processes; "
            + (
                f"imported {', '.join(sorted(heavy))}"
                if heavy
                else "no IPython/ipywidgets/aiosmtpd"
            ),
        )
    )
    results.key["import"] = f"{median * 1000:.0f} ms " + ("PASS" if not heavy else "FAIL")


def memory(lab: Lab, results: Results, *, megabytes: float) -> None:
    child = [
        sys.executable,
        str(HERE / "memchild.py"),
        str(lab.ports[587]),
        lab.info["cafile"],
        lab.info["username"],
        lab.info["password"],
        str(megabytes),
    ]
    found: dict[str, dict[str, Any]] = {}
    for mode in ("rss", "tracemalloc"):
        lab.clear()
        out = subprocess.run([*child, mode], capture_output=True, text=True, check=True)
        found[mode] = json.loads(out.stdout)
    rss, traced = found["rss"], found["tracemalloc"]
    size = rss["attachment"]
    mib = 2**20
    if rss["reset"]:
        peak = rss["peak_rss"] - rss["baseline_rss"]
        how = "VmHWM after clear_refs minus VmRSS"
    else:  # no clear_refs: the high-water mark cannot be reset; this may undercount
        peak = max(0, rss["maxrss_after"] - rss["maxrss_before"])
        how = "ru_maxrss delta (may undercount)"
    ratio = peak / size
    traced_ratio = traced["traced_peak"] / size
    results.rows.append(
        Row(
            f"peak RSS sending {megabytes:g} MiB attached (MiB)",
            f"{peak / mib:.0f}",
            f"{size / mib:.0f} attachment",
            ratio,
            "<= 4.0",
            ratio <= 4.0,
            f"{how}; baseline {rss['baseline_rss'] / mib:.0f} MiB with the message built",
        )
    )
    results.rows.append(
        Row(
            "peak Python allocations, same (MiB)",
            f"{traced['traced_peak'] / mib:.0f}",
            f"{size / mib:.0f} attachment",
            traced_ratio,
            "<= 4.0",
            traced_ratio <= 4.0,
            "tracemalloc peak during send(); OpenSSL buffers not included",
        )
    )
    results.key["memory"] = f"{ratio:.1f}x RSS / {traced_ratio:.1f}x traced"
