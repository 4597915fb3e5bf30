"""Benchmark smtp_magic against hand-written smtplib code, in one run, and print a table.

Usage::

    python benchmarks/run.py            # the full run (about eight minutes on 2 cores)
    python benchmarks/run.py --quick    # tiny counts: proves the script works (CI smoke test)

Every measurement runs smtp_magic and its baseline in the same run, interleaved, against a
LabServer (587 role: STARTTLS and AUTH, certificate verified) in a separate process:

- send_many of 1,000 small messages vs a stdlib loop on one connection (smtplib.SMTP,
  starttls(context=verifying), login, send_message), and vs a loop that reconnects per message;
- one send() vs the raw smtplib sequence (connect, STARTTLS, login, send, QUIT), median of 30;
- security="auto" vs explicit on a standard port (2525, when free) and on non-standard ports;
- ``import smtp_magic`` in fresh processes, and a check that it loads neither IPython,
  ipywidgets nor aiosmtpd;
- peak memory while sending a 25 MiB attachment, over the process's baseline (memchild.py);
- issue 16, over a modelled 50 ms link (delayproxy.py: 25 ms each way, TCP handshake included),
  100 messages: send_many vs the stdlib loop on one connection and vs reconnecting per message,
  in front of the lab and of a real Postfix as a submission service (postfix.py: STARTTLS,
  then AUTH PLAIN against Cyrus SASL's sasldb), round trips counted;
- rate="30/min" for two minutes (61 messages), the rate achieved at the server;
- a %%sendmail --to-each mail merge: --dry-run over 100,000 rows, and a real send of
  --merge-rows rows (default 10,000) to Postfix, with the peak RSS (mergechild.py).

The last line holds the key ratios. The exit status is 1 when the import check fails (the one
deterministic check); the timing and memory targets are reported as PASS/FAIL in the table.
Timings on a shared machine are noisy: compare the ratios, which come from the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases  # sibling modules, found through the path set above
import latency
from postfix import Postfix, available

POSTFIX_LOGIN = ("bench", "postfix-bench-password")
"""The one account of the benchmark's Postfix (a submission service: STARTTLS, then AUTH)."""


def _machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {platform.system()}"
    )


def _table(rows: list[cases.Row]) -> str:
    head = ("measurement", "smtp_magic", "baseline", "ratio", "target", "result", "note")
    cells = [
        (
            r.name,
            r.ours,
            r.baseline,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            {True: "PASS", False: "FAIL", None: ""}[r.passed],
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [head, *cells]) for i in range(len(head) - 1)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, cells)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, for a smoke test")
    parser.add_argument("--rtt", type=float, default=0.050, help="the modelled link's round trip")
    parser.add_argument(
        "--merge-rows", type=int, default=10_000, help="rows of the mail merge really sent"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.perf_counter()
    print(f"machine: {_machine()}", flush=True)
    results = cases.Results()
    lab = cases.Lab()
    stack = contextlib.ExitStack()
    postfix = None
    postfix_note = available(sasl=True)
    try:
        steps = [
            (
                "throughput",
                lambda: cases.throughput(
                    lab,
                    results,
                    n=20 if quick else 1000,
                    n_reconnect=5 if quick else 150,
                    rounds=1 if quick else 5,
                ),
            ),
            ("one send", lambda: cases.single_send(lab, results, runs=3 if quick else 30)),
            (
                "security auto",
                lambda: cases.security_auto(
                    lab, results, runs=2 if quick else 10, greeting_wait=0.3 if quick else 1.5
                ),
            ),
            ("import", lambda: cases.import_time(results, runs=2 if quick else 7)),
            ("memory", lambda: cases.memory(lab, results, megabytes=1 if quick else 25)),
            (
                "50 ms link, lab",
                lambda: latency.over_link(
                    latency.lab_target(lab),
                    lab.ports[587],
                    results,
                    n=10 if quick else 100,
                    n_reconnect=2 if quick else 20,
                    rtt=args.rtt,
                ),
            ),
        ]
        if postfix_note is None:
            postfix = stack.enter_context(Postfix(login=POSTFIX_LOGIN))
            steps.append(
                (
                    "50 ms link, Postfix",
                    lambda: latency.over_link(
                        latency.postfix_target(postfix),
                        postfix.port,
                        results,
                        n=10 if quick else 100,
                        n_reconnect=2 if quick else 20,
                        rtt=args.rtt,
                    ),
                )
            )
        else:
            results.rows.append(
                cases.Row("Postfix benchmarks", "", "", note=f"skipped: {postfix_note}")
            )
        steps += [
            (
                "pacing",
                lambda: latency.pacing(
                    results,
                    rate="600/min" if quick else "30/min",
                    per_minute=600 if quick else 30,
                    count=11 if quick else 61,
                ),
            ),
            (
                "merge",
                lambda: latency.merge(
                    results,
                    dry_rows=2000 if quick else 100_000,
                    send_rows=100 if quick else args.merge_rows,
                    postfix=postfix,
                ),
            ),
        ]
        for name, step in steps:
            print(f"... {name}", file=sys.stderr, flush=True)
            step()
    finally:
        stack.close()
        lab.close()
    print(_table(results.rows))
    print(f"({'quick run, ' if quick else ''}{time.perf_counter() - started:.0f} s)")
    print("key ratios: " + "; ".join(f"{k} {v}" for k, v in results.key.items()))
    return 0 if results.import_ok else 1


if __name__ == "__main__":
    sys.exit(main())
