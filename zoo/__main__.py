"""``python -m zoo``: the zoo command line (zoo/cli.py)."""

from zoo.cli import main

main()
