"""``python -m ahcore_rbac``: see :mod:`ahcore_rbac.cli`."""

import sys

from ahcore_rbac.cli import main

sys.exit(main())
