"""Where recordings live."""
