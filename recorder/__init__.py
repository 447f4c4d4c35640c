"""recorder: session recording and replay auditing for agent runtime shells."""
