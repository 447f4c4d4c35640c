"""recorder.cast."""
