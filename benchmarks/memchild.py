"""Child process of the memory benchmark: send one message with a large attachment, report memory.

Run by run.py as ``python benchmarks/memchild.py PORT CAFILE USERNAME PASSWORD MEGABYTES MODE``,
it prints one JSON line. MODE "rss": the resident set size before sending (after the message was
built) and its peak while sending, read from /proc/self/status after resetting the peak with
/proc/self/clear_refs (Linux >= 4.0). MODE "tracemalloc": the peak of Python allocations made
while sending, over those alive before (slower; C buffers such as OpenSSL's are not counted).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import tracemalloc


def _status(field: str) -> int:
    """A memory field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # "5": reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        return False
    return True


def main() -> None:
    port, cafile, username, password, megabytes, mode = sys.argv[1:7]
    from smtp_magic import Settings, compose, send

    settings = Settings(
        "127.0.0.1",
        port=int(port),
        security="starttls",
        username=username,
        password=password,
        sender="demo@lab.localhost",
        cafile=cafile,
        local_hostname="localhost",
        timeout=60.0,
    )
    size = int(float(megabytes) * 2**20)
    message = compose(
        to="bob@example.org",
        subject="a large attachment",
        body="The data is attached.",
        attachments=[("data.bin", os.urandom(size))],
    )
    gc.collect()
    result: dict[str, object] = {"attachment": size, "mode": mode}
    if mode == "rss":
        result["baseline_rss"] = _status("VmRSS")
        result["maxrss_before"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result["reset"] = _reset_peak()
        start = time.perf_counter()
        report = send(message, settings)
        result["seconds"] = time.perf_counter() - start
        result["peak_rss"] = _status("VmHWM")
        result["maxrss_after"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    else:
        tracemalloc.start()
        report = send(message, settings)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["traced_peak"] = peak
        result["traced_after"] = current
    result["accepted"] = list(report.accepted)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
