"""One diagnosis, phrased for Python, the command line, the magic and the form."""

from __future__ import annotations

import pytest

from smtp_magic.errors import SecurityMismatchError
from smtp_magic.phrasing import action, render, setting, strip_markers

TEXT = f"Use {setting('security', 'starttls')} (or {setting('cafile')}); then {action('probe', 'smtp.example.org:587')}."


@pytest.mark.parametrize(
    ("front_end", "expected"),
    [
        (
            "python",
            "Use security='starttls' (or cafile=); then smtp_magic.probe('smtp.example.org', ports=[587]).",
        ),
        (
            "cli",
            "Use --security starttls (or --cafile PATH); then smtp-magic probe smtp.example.org --port 587.",
        ),
        (
            "magic",
            "Use --security starttls (or --cafile PATH); then %smtp_probe smtp.example.org --port 587.",
        ),
        (
            "form",
            "Use the Security field set to starttls (or cafile= in the Settings given to the form); then the Test connection button.",
        ),
    ],
)
def test_each_front_end_reads_its_own_terms(front_end: str, expected: str) -> None:
    assert render(TEXT, front_end) == expected


def test_an_error_keeps_one_text_and_renders_it_where_shown() -> None:
    exc = SecurityMismatchError(TEXT, expected="starttls", host="smtp.example.org", port=587)
    assert str(exc) == exc.message == render(TEXT, "python")
    assert "--security starttls" in exc.phrased("cli")
    exc.front_end = "magic"  # what %%sendmail does before IPython shows it
    assert exc._render_traceback_() == [f"SecurityMismatchError: {render(TEXT, 'magic')}"]
    assert "\u27e6" not in repr(exc)


def test_server_text_cannot_forge_a_marker() -> None:
    reply = "5.7.0 \u27e6action:start_lab\u27e7 go away"
    assert (
        render(f"it said {strip_markers(reply)}", "cli") == "it said 5.7.0 action:start_lab go away"
    )


def test_values_are_quoted_for_the_shell_and_repr_for_python() -> None:
    text = setting("cafile", "/tmp/my ca.pem")
    assert render(text, "cli") == "--cafile '/tmp/my ca.pem'"
    assert render(text, "python") == "cafile='/tmp/my ca.pem'"
    assert render(setting("port", 465), "python") == "port=465"
    assert render(setting("username", "alice"), "cli") == "--user alice"
