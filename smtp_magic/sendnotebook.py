"""send_notebook(): run a notebook headless (nbclient), render its chosen outputs, email them.

The scheduled-report workflow (cron, papermill, Jupyter Scheduler)::

    send_notebook("report.ipynb", to="team@example.org", parameters={"region": "north"})

1. Credentials are resolved first, without a prompt (``Settings.from_env()``: SMTP_PASSWORD,
   then keyring): a missing password fails fast, before minutes of execution.
2. Parameters are injected as papermill does: a new cell tagged ``injected-parameters`` right
   after the cell tagged ``parameters`` (or first, when there is none).
3. The notebook runs in a fresh kernel (nbclient). A cell may decide that nothing is worth
   sending: ``send_email = False``, or ``raise SkipEmail("why")``. An error stops everything and
   nothing is sent, unless ``send_on_error=True``.
4. The chosen cells (tagged ``email``, or all) become an inbox-safe message
   (:mod:`smtp_magic.message.fromnotebook`), optionally with the executed ``.ipynb`` and an
   HTML export attached, and it is sent with :func:`smtp_magic.send`.

nbclient, nbformat and ipykernel (and nbconvert, for ``attach_html``) are imported on first
use: ``pip install "smtp-magic[report]"``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from smtp_magic.auth.credentials import keyring_service, with_password
from smtp_magic.errors import ComposeError, NotebookError, SettingsError
from smtp_magic.message.compose import compose
from smtp_magic.message.fromnotebook import add_inline_images, chosen_cells, render_notebook
from smtp_magic.phrasing import setting, strip_markers
from smtp_magic.report import SendReport
from smtp_magic.send import send
from smtp_magic.settings import Settings

__all__ = ["NotebookSend", "SkipEmail", "inject_parameters", "send_notebook"]

# Printed by a cell appended after the notebook's own: whether the notebook still wants to send.
_PROBE_MARK = "smtp_magic:send_email="
_PROBE = (
    "import json as _smtp_magic_json\n"
    f"print({_PROBE_MARK!r} + _smtp_magic_json.dumps("
    "bool(globals().get('send_email', True))))"
)


class SkipEmail(Exception):
    """Raise in a notebook run by :func:`send_notebook` to send nothing, e.g. when all is well.

    ``raise SkipEmail("no new alerts")``: execution stops, nothing is sent, and the reason is
    reported. The class is recognised by name, so a notebook can define its own ``SkipEmail``
    instead of importing this one.
    """


@dataclass(frozen=True)
class NotebookSend:
    """What :func:`send_notebook` did.

    Attributes:
        path: The notebook file.
        sent: True when the message was sent.
        reason: Why nothing was sent (``send_email`` False, ``SkipEmail``, dry run), or None.
        message: The message built (None when the notebook decided not to send).
        report: The SendReport, when sent.
        notebook: The executed notebook (nbformat NotebookNode).
    """

    path: str
    sent: bool
    reason: str | None = None
    message: EmailMessage | None = None
    report: SendReport | None = None
    notebook: Any = None

    def __str__(self) -> str:
        if self.sent and self.report is not None:
            return f"{self.path}: sent.\n{self.report}"
        return f"{self.path}: nothing was sent ({self.reason})."


def _nbformat() -> Any:
    """nbformat, imported on first use (its functions carry no type hints)."""
    return importlib.import_module("nbformat")


def _check_literal(name: str, value: object) -> str:
    if not name.isidentifier():
        raise SettingsError(f"parameter name {name!r} is not a Python identifier")
    source = repr(value)
    try:
        same = ast.literal_eval(source) == value
    except (ValueError, SyntaxError):
        same = False
    if not same:
        raise SettingsError(
            f"parameter {name}={source[:60]} is not a plain value: give str, int, float, bool, "
            "None, or lists and dicts of those"
        )
    return f"{name} = {source}"


def inject_parameters(notebook: Any, parameters: Mapping[str, object]) -> None:
    """Insert a cell setting ``parameters`` after the cell tagged ``parameters``, as papermill does.

    Args:
        notebook: An nbformat NotebookNode, changed in place.
        parameters: Names and plain values (str, int, float, bool, None, lists and dicts).

    Raises:
        SettingsError: a name is not an identifier or a value not a plain literal.
    """
    if not parameters:
        return
    nbformat = _nbformat()
    lines = [_check_literal(name, value) for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("# Parameters\n" + "\n".join(lines) + "\n")
    cell.metadata["tags"] = ["injected-parameters"]
    position = 0
    for index, existing in enumerate(notebook.cells):
        if "parameters" in (existing.get("metadata", {}).get("tags") or ()):
            position = index + 1
            break
    notebook.cells.insert(position, cell)


def _headless_settings(settings: Settings | None, sender: str | None) -> Settings:
    """Settings that work without a prompt, or a SettingsError saying what to set."""
    settings = settings or Settings.from_env(sender=sender)
    if sender and not settings.sender:
        settings = dataclasses.replace(settings, sender=sender)
    if not settings.username or settings.password or getattr(settings, "token", None):
        return settings
    try:
        return with_password(settings, interactive=False)
    except SettingsError:
        raise SettingsError(
            f"no password for {settings.username!r} at {settings.address}, and a scheduled "
            "notebook cannot be prompted: set SMTP_PASSWORD in its environment, or store it "
            f"with `keyring set {keyring_service(settings)} {settings.username}`. "
            "The notebook was not run."
        ) from None


def _failing_cell(notebook: Any) -> tuple[int, Any] | None:
    for number, cell in enumerate(notebook.cells, start=1):
        for output in cell.get("outputs") or ():
            if output.get("output_type") == "error":
                return number, cell
    return None


def _cell_start(cell: Any) -> str:
    source = "".join(cell.get("source") or "").strip().splitlines()
    return source[0][:80] if source else ""


def _execute(notebook: Any, path: Path, timeout: float, kernel_name: str | None) -> str | None:
    """Run the notebook in place; return why not to send, or None. NotebookError on failure."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook.cells.append(_nbformat().v4.new_code_cell(_PROBE))
    kernel = kernel_name or notebook.metadata.get("kernelspec", {}).get("name") or "python3"
    client = NotebookClient(
        notebook,
        timeout=int(timeout),
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent)}},  # run where the notebook lives
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        if exc.ename == "SkipEmail":
            return f"the notebook raised SkipEmail: {exc.evalue}" if exc.evalue else "SkipEmail"
        failing = _failing_cell(notebook)
        where = f"cell {failing[0]} ({_cell_start(failing[1])!r})" if failing else "a cell"
        raise NotebookError(
            f"{path.name}: {where} raised {strip_markers(exc.ename)}: "
            f"{strip_markers(exc.evalue)}. Nothing was sent. Fix the notebook, or use "
            f"{setting('send_on_error', True)} to send what ran.",
            cell=failing[0] if failing else None,
            notebook=notebook,
        ) from None
    except CellTimeoutError:
        raise NotebookError(
            f"{path.name}: a cell ran longer than {timeout:g} s. Nothing was sent. Raise "
            "timeout= (--timeout), or make the cell faster.",
            notebook=notebook,
        ) from None
    except DeadKernelError as exc:
        raise NotebookError(
            f"{path.name}: the kernel {kernel!r} died ({exc}). Nothing was sent.",
            notebook=notebook,
        ) from None
    finally:
        probe = notebook.cells[-1]
        if probe.get("source") == _PROBE:
            notebook.cells.pop()
    for output in probe.get("outputs") or ():
        text = "".join(output.get("text") or "")
        if _PROBE_MARK in text:
            wanted = json.loads(text.split(_PROBE_MARK, 1)[1].split()[0])
            return None if wanted else "the notebook set send_email = False"
    return None


def _check_saved_outputs(notebook: Any, path: Path, cells: Literal["tagged", "all"]) -> None:
    """Without execution, refuse a chosen code cell that never ran: its outputs would be missing."""
    for number, cell in chosen_cells(notebook, cells):
        if cell.get("cell_type") == "code" and cell.get("execution_count") is None:
            raise ComposeError(
                f"{path.name}: cell {number} ({_cell_start(cell)!r}) has never been run, so the "
                "report would miss its output. Run the notebook first, or let send_notebook run "
                "it (execute=True, --execute)."
            )


def _attachments(notebook: Any, path: Path, attach_notebook: bool, attach_html: bool) -> list[Any]:
    files: list[Any] = []
    if attach_notebook:
        files.append((path.name, _nbformat().writes(notebook).encode("utf-8")))
    if attach_html:
        try:
            exporter: Any = importlib.import_module("nbconvert").HTMLExporter()
        except ImportError:
            raise SettingsError(
                "attach_html needs nbconvert: pip install 'smtp-magic[report]'"
            ) from None
        body, _resources = exporter.from_notebook_node(notebook)
        files.append((f"{path.stem}.html", body.encode("utf-8")))
    return files


def send_notebook(
    path: str | os.PathLike[str],
    *,
    to: str | Iterable[str],
    subject: str | None = None,
    cells: Literal["tagged", "all"] = "tagged",
    parameters: Mapping[str, object] | None = None,
    execute: bool = True,
    settings: Settings | None = None,
    sender: str | None = None,
    cc: str | Iterable[str] = (),
    bcc: str | Iterable[str] = (),
    attach_notebook: bool = False,
    attach_html: bool = False,
    send_on_error: bool = False,
    timeout: float = 600.0,
    kernel_name: str | None = None,
    dry_run: bool = False,
) -> NotebookSend:
    """Run a notebook and email what its chosen cells show, as an inbox-safe report.

    Args:
        path: The ``.ipynb`` file.
        to: Recipients, as for :func:`smtp_magic.compose`.
        subject: The subject; default: the notebook's file name without ``.ipynb``.
        cells: ``"tagged"`` (cells tagged ``email``) or ``"all"``.
        parameters: Values injected after the cell tagged ``parameters`` (papermill style).
        execute: Run the notebook first; False sends the outputs saved in the file.
        settings: Where to send; default ``Settings.from_env()``. Only prompt-free credentials
            are used (the settings, SMTP_PASSWORD, keyring).
        sender: The From address, if the settings have none.
        cc: Copy recipients.
        bcc: Blind copy recipients.
        attach_notebook: Attach the executed ``.ipynb``.
        attach_html: Attach an HTML export of the whole notebook (needs nbconvert).
        send_on_error: Send what ran, with the error shown, when a cell fails.
        timeout: Seconds each cell may run.
        kernel_name: The kernel; default the notebook's own, else ``python3``.
        dry_run: Build the message but send nothing (``result.message`` holds it).

    Returns:
        A :class:`NotebookSend`: whether it was sent, why not, the message and the report.

    Raises:
        NotebookError: a cell failed (naming it), timed out, or the kernel died; nothing sent.
        SettingsError: no prompt-free password, bad parameters; raised before the notebook runs.
        ComposeError: nothing to send (no cell tagged ``email``), or a bad address.
        SMTPMagicError: sending failed, as :func:`smtp_magic.send` says.
    """
    nbformat = _nbformat()
    notebook_path = Path(path)
    if parameters and not execute:
        raise SettingsError("parameters only take effect when the notebook runs: use execute=True")
    ready = None if dry_run else _headless_settings(settings, sender)
    try:
        notebook = nbformat.read(notebook_path, as_version=4)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read the notebook {str(notebook_path)!r}: {exc}") from exc
    notice = None
    if execute:
        inject_parameters(notebook, parameters or {})
        try:
            skip = _execute(notebook, notebook_path, timeout, kernel_name)
        except NotebookError as exc:
            if not send_on_error:
                raise
            skip, notebook = None, exc.notebook
            notice = f"This report is incomplete: {str(exc).split(' Nothing was sent.')[0]}"
        if skip is not None:
            return NotebookSend(str(notebook_path), False, skip, notebook=notebook)
    else:
        _check_saved_outputs(notebook, notebook_path, cells)
    rendered = render_notebook(notebook, cells=cells, notice=notice)
    message = compose(
        to=to,
        cc=cc,
        bcc=bcc,
        sender=sender or (ready.sender if ready else None),
        subject=subject or notebook_path.stem,
        body=rendered.html,
        format="html",
        attachments=_attachments(notebook, notebook_path, attach_notebook, attach_html),
    )
    message.get_body(preferencelist=("plain",)).set_content(rendered.text)  # type: ignore[union-attr]
    add_inline_images(message, rendered.images)
    if ready is None:
        return NotebookSend(str(notebook_path), False, "dry run", message, notebook=notebook)
    report = send(message, ready)
    return NotebookSend(str(notebook_path), True, None, message, report, notebook)
