"""``python -m smtp_magic.cli``: the same as the ``smtp-magic`` command."""

import sys

from smtp_magic.cli.main import main

if __name__ == "__main__":  # importing this module (as pkgutil.walk_packages does) runs nothing
    sys.exit(main())
