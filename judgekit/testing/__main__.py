"""``python -m judgekit.testing``: the fake judge server."""

from judgekit.testing.cli import main

raise SystemExit(main())
