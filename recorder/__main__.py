"""``python -m recorder``: the same as the ``recorder`` command."""

from recorder.cli.app import main

# Guarded: a spawned child process (the proxy's indexer) imports this module under another name.
if __name__ == "__main__":
    main()
