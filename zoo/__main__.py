"""``python -m zoo``: the zoo command line (zoo/apps/cli.py)."""

from zoo.apps.cli import main

main()
