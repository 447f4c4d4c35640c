"""recorder.replay: terminal emulation and everything read off it, as a library over asciicast events.

- screen: :class:`~recorder.replay.screen.Screen` (avt emulator wrapper: text, styles, cursor, buffers)
- marks: incremental scanner for OSC 133 marks, alternate-screen switches, erases, resets
- driver: one pass over events feeding a screen and notifying observers
- commands: :func:`~recorder.replay.commands.extract_commands`
- text: :func:`~recorder.replay.text.output_lines` (rendered lines for search)
- render: :func:`~recorder.replay.render.screen_at`, :class:`~recorder.replay.render.Snapshots`,
  ``render_txt`` / ``render_svg`` / ``render_png``
- transcript: :func:`~recorder.replay.transcript.transcript`
"""
