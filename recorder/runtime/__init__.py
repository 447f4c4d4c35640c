"""recorder.runtime."""
