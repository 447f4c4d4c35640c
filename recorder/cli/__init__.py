"""recorder.cli."""
