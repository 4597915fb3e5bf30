"""The architecture, checked: wings, import direction, no cycles, and sizes a reader can hold in mind.

The package is read with ``ast`` (nothing is imported), so the rules hold for every module,
whether or not a test happens to load it. See the Development section of the README.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smtp_magic"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80  # statements of the body, docstring excluded
WINGS = ("smtp", "message", "auth", "notebook", "lab", "cli")
FRONT_ENDS = ("smtp_magic.notebook", "smtp_magic.cli", "smtp_magic.lab")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _is_front_end(module: str) -> bool:
    return any(_in(module, p) for p in FRONT_ENDS)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> Iterator[tuple[str, int, bool]]:
    """(imported smtp_magic module, line, inside a function) for every import that runs."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                yield from (i for c in child.orelse for i in walk_one(c, in_function))
                continue
            yield from walk_one(child, in_function)

    def walk_one(child: ast.AST, in_function: bool) -> Iterator[tuple[str, int, bool]]:
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield alias.name, child.lineno, in_function
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1])
                base = f"{base}.{child.module}" if child.module else base
            for alias in child.names:
                full = f"{base}.{alias.name}"
                yield (full if full in MODULES else base), child.lineno, in_function
        else:
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from walk(child, inner)

    for target, line, in_function in walk(tree, False):
        if _in(target, "smtp_magic"):
            while target not in MODULES:  # smtp_magic.x.NAME -> smtp_magic.x
                target = target.rpartition(".")[0]
            yield target, line, in_function


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        edges = graph.setdefault(module, set())
        for target, _line, in_function in _imports(module):
            # The package's front door loads the lab, the form and the magics lazily, by design:
            # those edges are its public API, not a dependency of the core.
            if module == "smtp_magic" and in_function:
                continue
            if target != module:
                edges.add(target)
    return graph


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_core_never_imports_the_front_ends_or_the_lab() -> None:
    wrong = [
        f"{module}:{line} imports {target}"
        for module in MODULES
        if not _is_front_end(module) and module != "smtp_magic"
        for target, line, _ in _imports(module)
        if _is_front_end(target)
    ]
    assert not wrong, "\n".join(wrong)


def test_front_ends_never_touch_the_socket_layer() -> None:
    wrong = [
        f"{module}:{line} imports {target}"
        for module in MODULES
        if _in(module, "smtp_magic.notebook") or _in(module, "smtp_magic.cli")
        for target, line, _ in _imports(module)
        if _in(target, "smtp_magic.smtp")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_message_wing_does_no_network_io() -> None:
    banned = {"socket", "ssl", "smtplib", "http", "urllib.request", "asyncio"}
    wrong = []
    for module, path in MODULES.items():
        if not _in(module, "smtp_magic.message"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            wrong += [
                f"{module} imports {n}" for n in names if n.split(".")[0] in banned or n in banned
            ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    lines = MODULES[module].read_text().count("\n")
    assert lines < MAX_MODULE_LINES, f"{module} has {lines} lines; split it by job"


def test_function_sizes() -> None:
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body
            has_doc = (
                isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            )
            first = body[1] if has_doc and len(body) > 1 else body[0]
            length = (node.end_lineno or first.lineno) - first.lineno + 1
            if length > MAX_FUNCTION_LINES:
                long.append(f"{module}.{node.name}: {length} lines")
    listing = "\n".join(long)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them):\n{listing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_says_what_it_is(module: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[module].read_text()))
    assert doc and doc.strip().splitlines()[0].strip(), f"{module} needs a one-line docstring"


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_is_a_package_that_says_what_it_is(wing: str) -> None:
    init = PACKAGE / wing / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text()))
    assert doc, f"smtp_magic/{wing}/__init__.py must open with a line saying what the wing is"
    assert len(doc.splitlines()[0]) <= 120


def test_the_checker_sees_imports() -> None:
    """The rules above would pass vacuously if the import reader found nothing."""
    graph = _graph()
    assert "smtp_magic.smtp.wire" in graph["smtp_magic.smtp.session"]
    assert "smtp_magic.settings" in graph["smtp_magic.send"]
    assert any(_in(t, "smtp_magic.notebook") for t in graph["smtp_magic.notebook.magic"])
