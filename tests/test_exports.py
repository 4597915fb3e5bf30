"""The public API: __all__ matches what is public, and the core imports no front-end library."""

from __future__ import annotations

import subprocess
import sys

import smtp_magic


def test_all_is_sorted_and_complete() -> None:
    assert smtp_magic.__all__ == sorted(smtp_magic.__all__)
    public = {name for name in dir(smtp_magic) if not name.startswith("_")}
    modules = {n for n in public if type(getattr(smtp_magic, n)).__name__ == "module"}
    assert public - modules == set(smtp_magic.__all__)
    for name in smtp_magic.__all__:
        assert getattr(smtp_magic, name) is not None


def test_core_import_loads_no_front_end_or_lab() -> None:
    code = (
        "import sys, smtp_magic; "
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'aiosmtpd', 'trustme', 'pandas', "
        "'matplotlib', 'jinja2', 'tqdm', 'markdown_it', 'css_inline', 'nbclient', 'nbformat', "
        "'nbconvert', 'msal', 'msal_extensions', 'google_auth_oauthlib', 'google.auth', 'authlib', "
        "'flask', 'requests') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_is_shipped() -> None:
    from pathlib import Path

    assert (Path(smtp_magic.__file__).parent / "py.typed").exists()


def test_public_names_stay_what_they_are_after_their_modules_load() -> None:
    """A lazily loaded name must not be replaced by a submodule of the same name once that loads."""
    code = (
        "import smtp_magic.discover, smtp_magic.sendnotebook, smtp_magic.lab.server, "
        "smtp_magic.notebook.form\n"
        "import smtp_magic\n"
        "print(sorted(n for n in smtp_magic.__all__ "
        "if type(getattr(smtp_magic, n)).__name__ == 'module'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
