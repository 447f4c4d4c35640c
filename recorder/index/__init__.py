"""recorder.index."""
