"""Child process of the mail-merge benchmark: a %%sendmail --to-each over a large table, in a real IPython shell.

Run by run.py as ``python benchmarks/mergechild.py ROWS MODE [PORT CAFILE USER]``; prints one JSON
line. MODE "dry": ``--dry-run`` (the time it takes, and the peak RSS); MODE "send": a real send
to 127.0.0.1:PORT (a Postfix with STARTTLS whose CA is CAFILE, logging in as USER with
the password in SMTP_PASSWORD), with the peak RSS of the whole
process (VmHWM) and what it was before the cell (the table and IPython already loaded).
"""

from __future__ import annotations

import gc
import json
import sys
import time

from memchild import _reset_peak, _status


def main() -> None:
    rows, mode = int(sys.argv[1]), sys.argv[2]
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryAccessor.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "smtp_magic")
    shell.user_ns["people"] = pd.DataFrame(
        {
            "email": [f"person{i}@example.org" for i in range(rows)],
            "name": [f"Person {i}" for i in range(rows)],
            "region": [("north", "south", "east", "west")[i % 4] for i in range(rows)],
        }
    )
    line = "--to-each people.email --subject 'Your region: {{ region }}' --from demo@lab.localhost"
    if mode == "dry":
        line += " --dry-run"
    else:
        port, cafile, user = sys.argv[3], sys.argv[4], sys.argv[5]
        line += f" --host 127.0.0.1 --port {port} --security starttls --cafile {cafile}"
        line += f" --user {user}"
        line += " --quiet --no-progress --timeout 60"
    body = "Hello {{ name }}, your region **{{ region }}** is in this week's numbers.\n"
    gc.collect()
    result: dict[str, object] = {"rows": rows, "mode": mode, "baseline_rss": _status("VmRSS")}
    result["reset"] = _reset_peak()
    start = time.perf_counter()
    shell.run_cell_magic("sendmail", line, body)
    result["seconds"] = time.perf_counter() - start
    result["peak_rss"] = _status("VmHWM")
    from smtp_magic import bulk

    report = bulk.last_report
    result["accepted"] = len(report.accepted) if report is not None and mode == "send" else 0
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
