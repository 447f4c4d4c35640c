"""recorder.storage."""
