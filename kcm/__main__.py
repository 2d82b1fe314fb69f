import sys

from kcm.cli import main

sys.exit(main())
