"""Jinja2 templates for message subjects and bodies, with pandas tables and matplotlib figures."""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import make_msgid
from typing import Any, Literal

from smtp_magic.errors import ComposeError

__all__ = [
    "RenderResult",
    "TemplateFigure",
    "is_dataframe",
    "is_figure",
    "is_styler",
    "is_table",
    "render",
    "table_html",
    "table_text",
]

DEFAULT_DOMAIN = "smtp_magic.local"

_UNDEFINED = re.compile(r"^'(?P<name>[^']+)' is undefined$")


@dataclass(frozen=True)
class TemplateFigure:
    """A matplotlib figure that a template showed.

    Attributes:
        name: The file name the figure gets, e.g. ``"fig.png"`` for a variable named ``fig``.
        figure: The ``matplotlib.figure.Figure`` itself.
        cid: The Content-ID, with angle brackets, that ``<img src="cid:...">`` points to.
    """

    name: str
    figure: Any
    cid: str


@dataclass(frozen=True)
class RenderResult:
    """The output of :func:`render`.

    Attributes:
        text: The rendered text (HTML in html mode).
        figures: The figures the template showed, in order of first appearance, each once.
        tables: The DataFrames the template showed, each once.
    """

    text: str
    figures: tuple[TemplateFigure, ...] = ()
    tables: tuple[Any, ...] = ()


def is_dataframe(value: object) -> bool:
    """Tell whether ``value`` is a pandas DataFrame, without importing pandas."""
    # If pandas was never imported, nothing can be a DataFrame.
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def is_styler(value: object) -> bool:
    """Tell whether ``value`` is a pandas Styler (``df.style...``), without importing pandas."""
    style_module = sys.modules.get("pandas.io.formats.style")
    return style_module is not None and isinstance(value, style_module.Styler)


def is_table(value: object) -> bool:
    """A DataFrame or a Styler: shown as a table, attached as CSV."""
    return is_dataframe(value) or is_styler(value)


def is_figure(value: object) -> bool:
    """Tell whether ``value`` is a matplotlib Figure, without importing matplotlib."""
    figure_module = sys.modules.get("matplotlib.figure")
    return figure_module is not None and isinstance(value, figure_module.Figure)


def has_meaningful_index(df: Any) -> bool:
    """Tell whether a DataFrame's index carries data (anything but the default 0..n-1)."""
    index = df.index
    if index.nlevels != 1 or index.name is not None:
        return True
    pandas = sys.modules["pandas"]
    return not (
        isinstance(index, pandas.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.stop == len(df)
    )


def table_html(df: Any) -> str:
    """Render a DataFrame or Styler as one line of HTML (one line, so Markdown keeps it intact).

    A Styler's ``<style>`` block comes along; inbox_html inlines it into the cells it styles.
    """
    if is_styler(df):
        rendered = df.to_html()
    else:
        rendered = df.to_html(index=has_meaningful_index(df), border=0, escape=True)
    # to_html puts every cell on its own line, so joining stripped lines changes no cell text.
    return "".join(line.strip() for line in rendered.splitlines())


def table_text(table: Any) -> str:
    """A DataFrame or Styler as aligned text (a Styler with its number formats applied)."""
    if is_styler(table):
        from smtp_magic.message.htmltext import html_to_text

        return html_to_text(table.to_html()).strip("\n")
    return str(table.to_string())


class _Shown:
    """What a template showed: each DataFrame as a table, each Figure as a named inline image."""

    def __init__(self, variables: Mapping[str, object], mode: str, domain: str) -> None:
        self.mode = mode
        self.domain = domain
        # A figure is named after its variable. A notebook namespace also holds the same object
        # as _, __, _5 or Out[5]; prefer the name the user wrote.
        self.names: dict[int, str] = {}
        for name, value in sorted(variables.items(), key=lambda item: item[0].startswith("_")):
            self.names.setdefault(id(value), name)
        self.figures: dict[int, TemplateFigure] = {}
        self.tables: dict[int, Any] = {}
        self.unnamed: list[int] = []  # one per unnamed figure: "figure.png", "figure-2.png"

    def figure_for(self, value: object) -> TemplateFigure:
        found = self.figures.get(id(value))
        if found is None:
            base = self.names.get(id(value))
            if base is None:
                self.unnamed.append(id(value))
                count = len(self.unnamed)
                name = "figure.png" if count == 1 else f"figure-{count}.png"
            else:
                name = base if base.lower().endswith(".png") else f"{base}.png"
            found = TemplateFigure(name=name, figure=value, cid=make_msgid(domain=self.domain))
            self.figures[id(value)] = found
        return found

    def finalize(self, value: object) -> object:
        """Jinja2's finalize hook: how a value is shown in the rendered template."""
        from markupsafe import Markup

        if is_table(value):
            self.tables.setdefault(id(value), value)
            if self.mode == "html":
                return Markup(table_html(value))
            return table_text(value)
        if is_figure(value):
            figure = self.figure_for(value)
            if self.mode == "html":
                return Markup('<img src="cid:{}" alt="figure: {}">').format(
                    Markup(html.escape(figure.cid[1:-1], quote=True)), figure.name
                )
            return f"[figure: {figure.name}]"
        return value


def render(
    text: str,
    variables: Mapping[str, object],
    *,
    mode: Literal["html", "text"],
    domain: str = DEFAULT_DOMAIN,
    label: str = "template",
) -> RenderResult:
    """Render a Jinja2 template in a sandbox, showing tables and figures.

    In html mode, values are HTML-escaped, a DataFrame becomes an HTML table and a Figure an
    ``<img src="cid:...">`` whose image the caller attaches as an inline part. In text mode a
    DataFrame becomes ``df.to_string()`` and a Figure ``[figure: NAME.png]``.

    Args:
        text: The template source.
        variables: The names the template may use, e.g. the notebook's namespace.
        mode: ``"html"`` or ``"text"``.
        domain: The domain part of the Content-IDs made for figures.
        label: What the template is, for error messages ("the subject template").

    Returns:
        The rendered text, with the figures and tables it showed.

    Raises:
        ComposeError: An undefined name, a syntax error, or an error while rendering.
    """
    # Jinja2 loads only when a template is rendered, keeping `import smtp_magic` light.
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    shown = _Shown(variables, mode, domain)
    environment = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=(mode == "html"),
        finalize=shown.finalize,
        keep_trailing_newline=True,
    )
    try:
        template = environment.from_string(text)
        rendered = template.render(dict(variables))
    except jinja2.TemplateSyntaxError as exc:
        raise ComposeError(
            f"{label} has a syntax error on line {exc.lineno}: {exc.message}. "
            "Fix that line (Jinja2 syntax: {{ name }} for a value, {% if %}...{% endif %})."
        ) from exc
    except jinja2.UndefinedError as exc:
        match = _UNDEFINED.match(exc.message or "")
        if match:
            raise ComposeError(
                f"{label} uses {{{{ {match['name']} }}}}, which is not defined: "
                "define it in the notebook or remove it"
            ) from exc
        raise ComposeError(
            f"{label} uses a value that is not defined ({exc.message}): "
            "define it in the notebook or remove it"
        ) from exc
    except jinja2.exceptions.SecurityError as exc:
        raise ComposeError(
            f"{label} tried something the sandbox forbids ({exc}): "
            "templates may show values and call their public methods, nothing more"
        ) from exc
    except Exception as exc:
        # An expression in the template failed ({{ 1 / 0 }}, a method raising...): the user's
        # template is at fault, so say so; the original exception stays chained.
        raise ComposeError(
            f"{label} failed while rendering: {type(exc).__name__}: {exc}. "
            "Check the expressions in the template."
        ) from exc
    return RenderResult(
        text=rendered, figures=tuple(shown.figures.values()), tables=tuple(shown.tables.values())
    )
