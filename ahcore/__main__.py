import sys

from ahcore.cli import main

sys.exit(main())
