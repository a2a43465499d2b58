"""``python -m cmfgit``: the same as the ``cmfgit`` command."""

import sys

from cmfgit.main import main

sys.exit(main())
