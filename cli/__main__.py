"""``python -m cli``: the ``autopilot`` command without the console script."""

from cli.main import main

main()
