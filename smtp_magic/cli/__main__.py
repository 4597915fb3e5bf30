"""``python -m smtp_magic.cli``: the same as the ``smtp-magic`` command."""

import sys

from smtp_magic.cli.main import main

sys.exit(main())
