"""recorder.replay."""
