"""``python -m carbon`` runs the command line."""

from carbon.cli import main

main()
