"""The command line's log lines: the "tsodso" logger, one line per message on stderr."""

from __future__ import annotations

import logging
import sys


def to_stderr() -> None:
    """Send the "tsodso" logger's INFO and above to stderr, message only; once per process
    (the command line calls it, and so does each process `compare` runs a scheme in, which
    does not inherit the command's handlers)."""
    log = logging.getLogger("tsodso")
    if not any(getattr(h, "_tsodso_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._tsodso_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
