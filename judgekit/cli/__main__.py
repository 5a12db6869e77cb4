"""``python -m judgekit.cli``: the ``judgekit`` command."""

import sys

from judgekit.cli.run import main

sys.exit(main())
