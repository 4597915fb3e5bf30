"""How long OAuth2 sign-in steps take against the lab's authority: headless refusals, cached and refreshed tokens.

Run: ``python benchmarks/oauth_signin.py``. The targets (issue 12): a headless run fails within a
second; a cached token costs nothing; a refresh is one HTTPS round trip. No baseline applies
(no other library offers these steps), so the script prints medians and maxima, not ratios.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable

from smtp_magic import SignInError
from smtp_magic.auth.microsoft import MicrosoftTokens
from smtp_magic.auth.tokenstore import MemoryStore
from smtp_magic.lab.authority import DEMO_CLIENT_ID, DEMO_USER, OAuthAuthority


def timed(step: Callable[[], object], runs: int = 5) -> tuple[float, float]:
    """Median and maximum seconds of ``step`` (a SignInError counts as its outcome)."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        with contextlib.suppress(SignInError):
            step()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), max(seconds)


def main() -> None:
    with OAuthAuthority(robot=DEMO_USER, robot_after=1) as authority:

        def provider(store: MemoryStore | None = None) -> MicrosoftTokens:
            return MicrosoftTokens(
                DEMO_CLIENT_ID,
                username=DEMO_USER,
                authority=authority.microsoft_authority,
                cafile=authority.cafile,
                store=store or MemoryStore(),
            )

        os.environ["CI"] = "true"
        rows = [("headless sign_in() refusal", timed(lambda: provider().sign_in()))]
        del os.environ["CI"]
        rows.append(("token() with nothing stored", timed(lambda: provider()())))
        store = MemoryStore()
        signed_in = provider(store)
        rows.append(
            (
                "device-code sign-in (interval 1 s, approved after 1 poll)",
                timed(lambda: signed_in.sign_in(lambda p: None, interactive=True), runs=3),
            )
        )
        rows.append(
            ("token() in a new process, from the stored cache", timed(lambda: provider(store)()))
        )
        warm = provider(store)
        warm()

        def forced() -> None:
            warm.invalidate()
            warm()

        rows.append(("forced refresh (refresh_token grant over TLS)", timed(forced)))
        rows.append(("cached token()", timed(warm, runs=50)))
    for name, (median, worst) in rows:
        print(f"{name:<60} median {median * 1000:9.3f} ms   max {worst * 1000:9.3f} ms")


if __name__ == "__main__":
    main()
