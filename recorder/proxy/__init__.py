"""recorder.proxy."""
