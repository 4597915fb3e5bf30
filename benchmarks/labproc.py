"""Run LabServers in their own process, so the client being measured does not share a GIL with them.

Prints one JSON line (ports, CA file, account), then reads commands from standard input:
"clear" empties the mailboxes (a lab that keeps thousands of parsed messages gets slower as its
garbage collector walks them) and answers "ok"; end of input stops the servers.
"""

from __future__ import annotations

import gc
import json
import socket
import sys
from contextlib import ExitStack

from smtp_magic.lab.server import LabServer

STANDARD_PORT = 2525  # connect.STANDARD_PORTS: security="auto" uses STARTTLS without waiting


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> None:
    with ExitStack() as stack:
        # The 25 MiB attachment case (34.9 MB encoded) needs more than the lab's SIZE (32 MiB).
        big = {"data_size_limit": 64 * 2**20}
        lab = stack.enter_context(LabServer(ports={25: 0, 465: 0, 587: 0}, **big))
        info: dict[str, object] = {
            "ports": lab.ports,
            "cafile": lab.cafile,
            "username": lab.username,
            "password": lab.password,
            "standard_port": None,
        }
        if _free(STANDARD_PORT):
            try:
                standard = stack.enter_context(
                    LabServer(ports={25: 0, 465: 0, 587: STANDARD_PORT}, **big)
                )
            except (OSError, RuntimeError) as exc:
                info["standard_note"] = f"{STANDARD_PORT} unusable: {exc}"
            else:
                info["standard_port"] = STANDARD_PORT
                info["standard_cafile"] = standard.cafile
        else:
            info["standard_note"] = f"port {STANDARD_PORT} is in use"
        labs = [lab, *([standard] if info["standard_port"] else [])]
        print(json.dumps(info), flush=True)
        for line in sys.stdin:  # until the parent closes our stdin (or exits)
            if line.strip() == "clear":
                for each in labs:
                    each.clear()
                gc.collect()
                print("ok", flush=True)


if __name__ == "__main__":
    main()
