"""``python -m recorder``: the same as the ``recorder`` command."""

from recorder.cli.app import main

main()
