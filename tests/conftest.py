"""Suite-wide settings."""

from __future__ import annotations

import os

# The embedded runtime's bash would source the machine's ~/.bashrc (pyenv hooks and the like):
# tests must not depend on it, nor wait on it.
os.environ.setdefault("RECORDER_RUNTIME_NO_USER_RC", "1")
