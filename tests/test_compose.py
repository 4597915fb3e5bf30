"""Tests for compose(): the MIME tree, attachments, encodings, templates and refusals."""

from __future__ import annotations

import email.policy
import io
import pathlib
import re
import subprocess
import sys
from email.message import EmailMessage
from email.parser import BytesParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtp_magic.errors import ComposeError
from smtp_magic.message.compose import compose, html_to_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TO = "bob@example.org"


def tree(part: EmailMessage) -> object:
    """The MIME tree as nested (content type, [children]) or a content type string."""
    if part.is_multipart():
        return (part.get_content_type(), [tree(p) for p in part.iter_parts()])
    return part.get_content_type()


def wire_and_back(message: EmailMessage) -> tuple[bytes, EmailMessage]:
    """Flatten as smtplib sends it and parse it back as a recipient would."""
    wire = message.as_bytes(policy=email.policy.SMTP)
    parsed = BytesParser(policy=email.policy.default).parsebytes(wire)
    assert isinstance(parsed, EmailMessage)
    return wire, parsed


def parts_of(message: EmailMessage, content_type: str) -> list[EmailMessage]:
    return [p for p in message.walk() if p.get_content_type() == content_type]


def html_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def assert_cids_resolve(message: EmailMessage) -> list[str]:
    """Every cid: in the HTML names a part's Content-ID; return the cids."""
    cids = re.findall(r'src="cid:([^"]+)"', html_of(message))
    content_ids = {str(p["Content-ID"]).strip("<>") for p in message.walk() if p["Content-ID"]}
    assert cids, "no cid: reference in the HTML"
    assert set(cids) <= content_ids
    return cids


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city": ["Zürich", "Oslo", "São Paulo"],
            "count": [3, 14, 15],
            "share": [0.25, 0.125, 0.625],
        }
    )


@pytest.fixture
def fig():  # type: ignore[no-untyped-def]
    figure, axes = plt.subplots(figsize=(2, 1.5))
    axes.plot([1, 2, 3], [3, 1, 2])
    yield figure
    plt.close(figure)


# --- structure -------------------------------------------------------------------------------


def test_text_only_is_a_single_text_plain_part() -> None:
    message = compose(to=TO, subject="Hi", body="Hello\n", format="text")
    assert tree(message) == "text/plain"
    assert text_of(message) == "Hello\n"
    assert message["Date"] and message["Message-ID"]
    assert "From" not in message  # the sender fills it in from Settings.sender


def test_markdown_without_attachments_is_alternative_only() -> None:
    message = compose(to=TO, subject="Hi", body="# Title\n\nSome *text*.\n")
    assert tree(message) == ("multipart/alternative", ["text/plain", "text/html"])
    assert text_of(message) == "# Title\n\nSome *text*.\n"
    html = html_of(message)
    assert "<h1>Title</h1>" in html and "<em>text</em>" in html
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    # Inbox-safe: the house style is written into the elements, not into a <style> block.
    assert "<style" not in html and '<body style="font-family:Arial' in html


def test_markdown_table_renders_as_html_table() -> None:
    body = "| name | n |\n|------|---|\n| a | 1 |\n| b | 2 |\n"
    html = html_of(compose(to=TO, subject="t", body=body))
    assert re.search(r'<table style="[^"]*border-collapse:collapse', html)
    assert re.search(r'<th style="[^"]*border:1px solid[^"]*">name</th>', html)
    assert re.search(r'<td style="[^"]*">2</td>', html)


def test_a_styler_shows_its_formats_inline_and_attaches_the_data_as_csv() -> None:
    frame = pd.DataFrame({"item": ["a", "b"], "delta": [1234.5, -2.0]})
    styler = frame.style.format({"delta": "{:+,.1f}"}).map(
        lambda v: "color: red" if v < 0 else "", subset=["delta"]
    )
    message = compose(to=TO, subject="t", body="Deltas:", attachments=[("deltas", styler)])
    html = html_of(message)
    assert "<style" not in html and "class=" not in html
    assert re.search(r'<td style="[^"]*color:red[^"]*">-2.0</td>', html)
    assert ">+1,234.5</td>" in html
    assert text_of(message) == (
        "Deltas:\n\n   item     delta\n0  a     +1,234.5\n1  b         -2.0\n"
    )
    (csv,) = parts_of(message, "text/csv")
    assert csv.get_filename() == "deltas.csv"
    assert csv.get_content() == "item,delta\na,1234.5\nb,-2.0\n"


def test_html_format_gets_a_readable_text_part() -> None:
    body = "<h1>Report</h1><p>All <b>good</b>, see <a href='https://example.org/r'>this</a>.</p>"
    message = compose(to=TO, subject="t", body=body, format="html")
    assert tree(message) == ("multipart/alternative", ["text/plain", "text/html"])
    text = text_of(message)
    assert "<" not in text.replace("<https://example.org/r>", "")
    assert "Report" in text and "All good, see this <https://example.org/r>." in text
    assert "<b>good</b>" in html_of(message)


def test_markdown_with_figure_and_table(df: pd.DataFrame, fig: object) -> None:
    message = compose(to=TO, subject="t", body="Results:\n", attachments=[("df", df), ("fig", fig)])
    assert tree(message) == (
        "multipart/mixed",
        [
            (
                "multipart/alternative",
                ["text/plain", ("multipart/related", ["text/html", "image/png"])],
            ),
            "text/csv",
        ],
    )
    assert_cids_resolve(message)
    png_part = parts_of(message, "image/png")[0]
    assert png_part.get_content_disposition() == "inline"
    assert png_part.get_filename() == "fig.png"
    csv_part = parts_of(message, "text/csv")[0]
    assert csv_part.get_filename() == "df.csv" and csv_part.is_attachment()
    text = text_of(message)
    assert df.to_string() in text and "[figure: fig.png]" in text
    assert "<table" in html_of(message) and "Zürich" in html_of(message)


def test_figure_only_has_related_but_no_mixed(fig: object) -> None:
    message = compose(to=TO, subject="t", body="See:", attachments=[fig])
    assert tree(message) == (
        "multipart/alternative",
        ["text/plain", ("multipart/related", ["text/html", "image/png"])],
    )
    assert parts_of(message, "image/png")[0].get_filename() == "figure.png"
    assert "[figure: figure.png]" in text_of(message)


def test_text_format_turns_figures_into_attachments(fig: object) -> None:
    message = compose(to=TO, subject="t", body="See attached.\n", attachments=[fig], format="text")
    assert tree(message) == ("multipart/mixed", ["text/plain", "image/png"])
    png_part = parts_of(message, "image/png")[0]
    assert png_part.is_attachment() and png_part.get_filename() == "figure.png"
    assert png_part["Content-ID"] is None


def test_csv_round_trips_through_read_csv(df: pd.DataFrame) -> None:
    _, parsed = wire_and_back(compose(to=TO, subject="t", body="x", attachments=[df]))
    csv_part = parts_of(parsed, "text/csv")[0]
    assert csv_part.get_filename() == "table.csv"
    assert csv_part.get_content_charset() == "utf-8"
    back = pd.read_csv(io.BytesIO(csv_part.get_payload(decode=True)))
    pd.testing.assert_frame_equal(back, df)


def test_csv_keeps_a_meaningful_index() -> None:
    frame = pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="key"))
    _, parsed = wire_and_back(compose(to=TO, subject="t", body="x", attachments=[frame]))
    payload = parts_of(parsed, "text/csv")[0].get_payload(decode=True)
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(payload), index_col=0), frame)


def test_inline_png_decodes(fig: object) -> None:
    _, parsed = wire_and_back(compose(to=TO, subject="t", body="x", attachments=[fig]))
    data = parts_of(parsed, "image/png")[0].get_payload(decode=True)
    assert data.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.ndim == 3 and image.shape[0] > 10 and image.shape[1] > 10
    assert_cids_resolve(parsed)


def test_default_names_are_numbered(df: pd.DataFrame, fig: object) -> None:
    fig2, _ = plt.subplots()
    try:
        message = compose(
            to=TO, subject="t", body="x", attachments=[df, df.head(1), fig, fig2, b"1", b"2"]
        )
    finally:
        plt.close(fig2)
    names = [p.get_filename() for p in message.walk() if p.get_filename()]
    assert names == [
        "figure.png",
        "figure-2.png",
        "table.csv",
        "table-2.csv",
        "attachment.bin",
        "attachment-2.bin",
    ]


@pytest.mark.parametrize(
    ("name", "filename", "content_type"),
    [
        ("data", "data", "application/octet-stream"),
        ("data.json", "data.json", "application/json"),
        ("notes.txt", "notes.txt", "text/plain"),
    ],
)
def test_named_bytes(name: str, filename: str, content_type: str) -> None:
    message = compose(to=TO, subject="t", body="x", attachments=[(name, b"{}")])
    (part,) = [p for p in message.walk() if p.is_attachment()]
    assert (part.get_filename(), part.get_content_type()) == (filename, content_type)
    assert part.get_payload(decode=True) == b"{}"


def test_unnamed_bytes() -> None:
    message = compose(to=TO, subject="t", body="x", attachments=[b"\x00\x01"], format="text")
    assert tree(message) == ("multipart/mixed", ["text/plain", "application/octet-stream"])
    assert parts_of(message, "application/octet-stream")[0].get_filename() == "attachment.bin"


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("report.csv", "text/csv"),
        ("paper.pdf", "application/pdf"),
        ("plot.png", "image/png"),
        ("notes.txt", "text/plain"),
        ("archive.csv.gz", "application/gzip"),
    ],
)
def test_file_attachments(tmp_path: pathlib.Path, filename: str, content_type: str) -> None:
    path = tmp_path / filename
    data = b"a,b\r\n1,2\n" if filename.endswith((".csv", ".txt")) else bytes(range(256))
    path.write_bytes(data)
    for given_as in (str(path), path):
        _, parsed = wire_and_back(compose(to=TO, subject="t", body="x", attachments=[given_as]))
        (part,) = [p for p in parsed.walk() if p.is_attachment()]
        assert part.get_filename() == filename
        assert part.get_content_type() == content_type
        assert part.get_payload(decode=True) == data  # byte for byte, line endings too


def test_file_attachment_renamed_by_tuple(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"%PDF-1.4")
    message = compose(to=TO, subject="t", body="x", attachments=[("report.pdf", path)])
    (part,) = [p for p in message.walk() if p.is_attachment()]
    assert (part.get_filename(), part.get_content_type()) == ("report.pdf", "application/pdf")


def test_missing_file_error_names_the_path(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope" / "results.csv"
    with pytest.raises(ComposeError, match=re.escape(str(missing))):
        compose(to=TO, subject="t", body="x", attachments=[missing])


def test_directory_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ComposeError, match="is a directory"):
        compose(to=TO, subject="t", body="x", attachments=[tmp_path])


@pytest.mark.parametrize("value", [42, 3.5, None, object(), ("a", "b", "c"), (1, b"x")])
def test_unsupported_attachment_types(value: object) -> None:
    with pytest.raises(ComposeError) as info:
        compose(to=TO, subject="t", body="x", attachments=[value])
    assert "DataFrame" in str(info.value) or "(name, value)" in str(info.value)


# --- addresses and headers -------------------------------------------------------------------


def test_address_forms() -> None:
    message = compose(
        to="a@example.org, Bee <b@example.org>",
        cc=['"Smith, Carol" <c@example.org>', "d@example.org"],
        bcc="e@example.org",
        reply_to="Team <team@example.org>",
        sender="Alice <alice@example.org>",
        subject="t",
        body="x",
    )
    assert [a.addr_spec for a in message["To"].addresses] == ["a@example.org", "b@example.org"]
    assert [a.display_name for a in message["Cc"].addresses] == ["Smith, Carol", ""]
    assert str(message["Bcc"]) == "e@example.org"  # kept; the sender strips it before sending
    assert str(message["Reply-To"]) == "Team <team@example.org>"
    assert str(message["From"]) == "Alice <alice@example.org>"
    assert str(message["Message-ID"]).endswith("@example.org>")
    _, parsed = wire_and_back(message)
    assert parsed["Cc"].addresses == message["Cc"].addresses


def test_bcc_only_is_enough() -> None:
    message = compose(to=(), bcc=["hidden@example.org"], subject="t", body="x")
    assert "To" not in message and str(message["Bcc"]) == "hidden@example.org"


def test_no_recipient_is_refused() -> None:
    with pytest.raises(ComposeError, match="no recipient"):
        compose(to="", subject="t", body="x")


@pytest.mark.parametrize(
    "bad",
    [
        "alice",
        "@example.org",
        "alice@",
        "alice smith@example.org",
        "a@b@example.org",
        "alice@exa mple.org",
        "alice@example.org <bob@evil.example>",
        "<>",
        "team: a@example.org, b@example.org;",
    ],
)
@pytest.mark.parametrize("field", ["to", "cc", "bcc", "sender", "reply_to"])
def test_malformed_addresses_are_refused(bad: str, field: str) -> None:
    arguments: dict[str, object] = {"to": TO, "subject": "t", "body": "x", field: bad}
    with pytest.raises(ComposeError) as info:
        compose(**arguments)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value) and field in str(info.value)


def test_non_string_address_is_refused() -> None:
    with pytest.raises(ComposeError, match="to contains"):
        compose(to=[b"a@example.org"], subject="t", body="x")  # type: ignore[list-item]


INJECTIONS = ["x\r\nBcc: victim@example.org", "x\nX-Evil: 1", "x\rY", "x\u2028y", "x\x85y"]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("field", ["subject", "to", "cc", "bcc", "sender", "reply_to", "name"])
def test_header_injection_is_refused(field: str, payload: str) -> None:
    arguments: dict[str, object] = {"to": TO, "subject": "t", "body": "x"}
    if field == "subject":
        arguments["subject"] = payload
    elif field == "name":
        arguments["to"] = f'"{payload}" <a@example.org>'
    else:
        arguments[field] = f"a@example.org{payload}"
    with pytest.raises(ComposeError, match="contains a line break; header values must be one line"):
        compose(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_line_break_in_attachment_names_is_refused(tmp_path: pathlib.Path, payload: str) -> None:
    with pytest.raises(ComposeError, match="line break"):
        compose(to=TO, subject="t", body="x", attachments=[(f"a{payload}.bin", b"x")])
    path = tmp_path / f"a{payload}.txt"  # POSIX file names may hold any character but / and NUL
    path.write_bytes(b"x")
    with pytest.raises(ComposeError, match="line break"):
        compose(to=TO, subject="t", body="x", attachments=[path])


def test_injection_in_rendered_subject_is_refused() -> None:
    with pytest.raises(ComposeError, match="line break"):
        compose(to=TO, subject="{{ s }}", body="x", template_vars={"s": "a\nBcc: v@example.org"})


def test_non_ascii_round_trip(tmp_path: pathlib.Path) -> None:
    long_name = "Übersicht \N{EN DASH} März.txt"
    path = tmp_path / long_name
    path.write_text("Grüße\n", encoding="utf-8")
    message = compose(
        to="Jöhn Dœ <john@example.org>",
        sender="Zoë <zoe@example.org>",
        subject="Résumé: 日本語の件名",
        body="Héllo wörld\n",
        attachments=[path, ("données.csv", b"a\n1\n")],
    )
    wire, parsed = wire_and_back(message)
    assert wire.isascii()
    headers = wire.split(b"\r\n\r\n", 1)[0]
    assert b"Subject: =?utf-8?" in headers and b"To: =?utf-8?" in headers
    assert b"filename*=" in wire
    assert parsed["Subject"] == "Résumé: 日本語の件名"
    assert parsed["To"].addresses == message["To"].addresses
    assert parsed["To"].addresses[0].display_name == "Jöhn Dœ"
    assert parsed["From"].addresses[0].display_name == "Zoë"
    names = [p.get_filename() for p in parsed.walk() if p.is_attachment()]
    assert names == [long_name, "données.csv"]
    text_part = next(p for p in parsed.walk() if p.get_filename() == long_name)
    assert text_part.get_content_charset() == "utf-8"
    assert text_of(parsed) == "Héllo wörld\n"


def test_non_ascii_local_part_and_idn_domain() -> None:
    message = compose(to="jöhn@bücher.example", subject="t", body="x")
    (address,) = message["To"].addresses
    assert address.username == "jöhn"  # allowed; sending it needs SMTPUTF8 (RFC 6531)
    assert address.domain == "xn--bcher-kva.example"  # IDNA, so the domain needs nothing


def test_message_id_domain_defaults_to_local() -> None:
    message = compose(to=TO, subject="t", body="x")
    assert str(message["Message-ID"]).endswith("@smtp_magic.local>")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ComposeError, match="format 'rst'"):
        compose(to=TO, subject="t", body="x", format="rst")  # type: ignore[arg-type]


# --- templates -------------------------------------------------------------------------------


def test_template_plain_variables_and_subject() -> None:
    message = compose(
        to=TO,
        subject="Report for {{ month }}",
        body="Total: **{{ total }}** ({{ items | length }} items)\n",
        template_vars={"month": "March", "total": 42, "items": [1, 2, 3]},
    )
    assert message["Subject"] == "Report for March"
    assert text_of(message) == "Total: **42** (3 items)\n"
    assert "<strong>42</strong> (3 items)" in html_of(message)


def test_template_dataframe_and_figure(df: pd.DataFrame, fig: object) -> None:
    message = compose(
        to=TO,
        subject="t",
        body="# Results\n\n{{ df }}\n\n{{ fig }}\n",
        template_vars={"df": df, "fig": fig},
        attachments=[("df", df)],
    )
    assert tree(message) == (
        "multipart/mixed",
        [
            (
                "multipart/alternative",
                ["text/plain", ("multipart/related", ["text/html", "image/png"])],
            ),
            "text/csv",
        ],
    )
    html = html_of(message)
    assert html.count("<table") == 1  # shown once, though also attached
    assert "São Paulo" in html
    assert len(assert_cids_resolve(message)) == 1
    text = text_of(message)
    assert df.to_string() in text and "[figure: fig.png]" in text
    assert text.count(df.to_string()) == 1
    assert parts_of(message, "image/png")[0].get_filename() == "fig.png"


def test_template_figure_also_attached_is_shown_once(fig: object) -> None:
    message = compose(
        to=TO, subject="t", body="{{ fig }}", template_vars={"fig": fig}, attachments=[fig]
    )
    assert len(parts_of(message, "image/png")) == 1


def test_template_figure_in_text_format_is_attached(fig: object) -> None:
    message = compose(
        to=TO, subject="t", body="Plot: {{ fig }}\n", template_vars={"fig": fig}, format="text"
    )
    assert tree(message) == ("multipart/mixed", ["text/plain", "image/png"])
    assert text_of(message) == "Plot: [figure: fig.png]\n"
    assert parts_of(message, "image/png")[0].get_filename() == "fig.png"


def test_template_html_format(df: pd.DataFrame) -> None:
    message = compose(
        to=TO,
        subject="t",
        body="<p>Hello {{ who }}</p>{{ df }}",
        template_vars={"who": "<Bob & Co>", "df": df},
        format="html",
    )
    html = html_of(message)
    assert "Hello &lt;Bob &amp; Co&gt;" in html and "<table" in html
    text = text_of(message)
    assert "Hello <Bob & Co>" in text and "Zürich" in text


def test_template_values_are_escaped_in_html_only() -> None:
    evil = '<script>alert("x")</script>'
    message = compose(to=TO, subject="{{ v }}", body="Value: {{ v }}\n", template_vars={"v": evil})
    html = html_of(message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert text_of(message) == f"Value: {evil}\n"
    assert message["Subject"] == evil


def test_template_undefined_variable() -> None:
    with pytest.raises(ComposeError) as info:
        compose(to=TO, subject="t", body="Hi {{ nmae }}", template_vars={"name": "x"})
    assert "template uses {{ nmae }}, which is not defined" in str(info.value)
    assert "define it in the notebook or remove it" in str(info.value)


def test_template_undefined_in_subject() -> None:
    with pytest.raises(ComposeError, match=r"subject template uses \{\{ when \}\}"):
        compose(to=TO, subject="Due {{ when }}", body="x", template_vars={})


def test_template_syntax_error_gives_the_line() -> None:
    with pytest.raises(ComposeError, match="line 3"):
        compose(to=TO, subject="t", body="a\nb\n{{ oops }\n", template_vars={"oops": 1})


def test_template_sandbox_and_runtime_errors() -> None:
    with pytest.raises(ComposeError, match="sandbox"):
        compose(to=TO, subject="t", body="{{ x.__class__.__mro__ }}", template_vars={"x": 1})
    with pytest.raises(ComposeError, match="ZeroDivisionError"):
        compose(to=TO, subject="t", body="{{ 1 / 0 }}", template_vars={})


def test_without_template_vars_braces_are_literal() -> None:
    message = compose(to=TO, subject="{{ x }}", body="{{ x }}\n", format="text")
    assert message["Subject"] == "{{ x }}" and text_of(message) == "{{ x }}\n"


# --- helpers and optional dependencies -------------------------------------------------------


def test_html_to_text() -> None:
    markup = (
        "<html><head><style>p{}</style></head><body><h1>T</h1><ul><li>one</li><li>two</li></ul>"
        "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"
        '<p>x<br>y <img src="cid:1" alt="figure: f.png"></p><pre>  keep\n  this</pre></body></html>'
    )
    assert html_to_text(markup) == (
        "T\n\n- one\n- two\n\na  b\n1  2\n\nx\ny [figure: f.png]\n\nkeep\nthis\n"
    )


def test_compose_imports_without_pandas_or_matplotlib() -> None:
    code = (
        "import sys\n"
        "from smtp_magic.message.compose import compose\n"
        "assert 'pandas' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "m = compose(to='a@example.org', subject='s', body='x', attachments=[b'1'])\n"
        "print(m.get_content_type())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "multipart/mixed"


# --- properties ------------------------------------------------------------------------------

LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
one_line_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters=LINE_BREAKS), max_size=80
)


def quoted(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" <a@example.org>'


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=one_line_text, name=one_line_text)
def test_one_line_headers_compose_and_round_trip_or_refuse(subject: str, name: str) -> None:
    try:
        message = compose(to=quoted(name), subject=subject, body="x", format="text")
    except ComposeError:
        return
    assert message["Subject"] == subject.strip()
    wire, parsed = wire_and_back(message)
    assert wire.isascii()
    assert parsed["Subject"] == message["Subject"]
    assert parsed["To"].addresses == message["To"].addresses


@settings(max_examples=200, deadline=None)
@given(
    before=one_line_text,
    after=one_line_text,
    line_break=st.sampled_from(["\r", "\n", "\r\n", "\u2028", "\x85"]),
    where=st.sampled_from(["subject", "name", "to"]),
)
def test_line_breaks_always_refused(before: str, after: str, line_break: str, where: str) -> None:
    value = before + line_break + after
    arguments: dict[str, object] = {"to": TO, "subject": "t", "body": "x"}
    if where == "subject":
        arguments["subject"] = value
    elif where == "name":
        arguments["to"] = quoted(value)
    else:
        arguments["to"] = value
    with pytest.raises(ComposeError):
        compose(**arguments)  # type: ignore[arg-type]


# -- issue 11: encoded-words that decode to line breaks; inputs that raised raw exceptions ---------

ENCODED_BREAKS = [
    "=?utf-8?q?report.pdf=0D=0AContent-Type:_text=2Fhtml=0D=0AX-Injected:_yes?=",
    "=?utf-8?b?cmVwb3J0LnBkZg0KWC1JbmplY3RlZDogeWVz?=",
    "=?utf-8?q?report.pdf=E2=80=A8X-Injected:_yes?=",
]


@pytest.mark.parametrize("name", ENCODED_BREAKS)
def test_an_attachment_name_that_decodes_to_a_line_break_is_a_compose_error(name: str) -> None:
    """A file someone else named, a form upload or a (name, value) tuple adds no header line."""
    with pytest.raises(ComposeError, match="filename parameter of Content-Disposition"):
        compose(to="a@example.org", subject="s", body="b", attachments=[(name, b"%PDF")])


def test_an_attached_file_whose_name_decodes_to_a_line_break(tmp_path) -> None:
    path = tmp_path / ENCODED_BREAKS[0]
    path.write_bytes(b"%PDF")
    with pytest.raises(ComposeError, match="line break"):
        compose(to="a@example.org", subject="s", body="b", attachments=[path])


def test_a_subject_that_decodes_to_a_line_break_is_named_as_one() -> None:
    with pytest.raises(ComposeError, match=r"Subject, decoded.*line break"):
        compose(to="a@example.org", subject="=?utf-8?q?hi=0D=0ABcc:_x@example.org?=", body="b")


def test_an_encoded_word_without_a_line_break_is_fine() -> None:
    message = compose(
        to="a@example.org",
        subject="s",
        body="b",
        attachments=[("=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=", b"x")],
    )
    assert [p.get_filename() for p in message.iter_attachments()] == ["résumé.pdf"]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"body": "caf\udce9"}, "lone surrogate"),  # bytes read with surrogateescape
        ({"subject": "caf\udce9"}, "lone surrogate"),
        ({"body": "{{ x }}", "template_vars": {"x": "\udce9"}}, "lone surrogate"),
        ({"template_vars": ["x"]}, "template_vars must map names"),
        ({"template_vars": "x"}, "template_vars must map names"),
    ],
)
def test_inputs_that_raised_raw_exceptions_are_compose_errors(kwargs: dict, reason: str) -> None:
    values = {"to": "a@example.org", "subject": "s", "body": "b", **kwargs}
    with pytest.raises(ComposeError, match=reason):
        compose(**values)


def test_attachments_none_means_no_attachments() -> None:
    message = compose(to="a@example.org", subject="s", body="b", attachments=None)  # type: ignore[arg-type]
    assert list(message.iter_attachments()) == []


def test_an_empty_body_makes_no_empty_part() -> None:
    """A message of attachments alone carries just them; a subject alone is one text part."""
    message = compose(
        to="a@example.org", subject="the file", body="", attachments=[("a.csv", b"x,y\n1,2\n")]
    )
    parsed = BytesParser(policy=email.policy.default).parsebytes(bytes(message))
    leaves = [p for p in parsed.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in leaves] == ["text/csv"]
    assert all(p.get_payload(decode=True) for p in leaves)
    alone = compose(to="a@example.org", subject="call me", body="  \n")
    assert not alone.is_multipart() and alone.get_content_type() == "text/plain"
