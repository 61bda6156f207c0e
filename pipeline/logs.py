"""What the command line logs: known third-party start-up noise filtered, stemforge's own INFO shown.

Importing Beam logs ``apitools not found, and bigquery client libraries are not available`` on the
root logger (its optional GCP clients, which stemforge does not use); a user reads it as something
broken. Only records that match a known message are dropped: every other warning, Beam's included,
goes through.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata

FORMAT = "%(levelname)s %(name)s: %(message)s"
OUR_LOGGERS = ("stemforge",)  # every module logger is stemforge.<package>.<module>

NOISE = (
    re.compile(r"^apitools not found, and bigquery client libraries are not available"),
)


class StartupNoiseFilter(logging.Filter):
    """Drops the records whose message matches one of ``NOISE``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.search(message) for pattern in NOISE)


def silence_startup_noise() -> None:
    """Install the filter on the root logger (where the noise is logged) once."""
    root = logging.getLogger()
    if not any(isinstance(f, StartupNoiseFilter) for f in root.filters):
        root.addFilter(StartupNoiseFilter())


def _implicit_default(handler: logging.Handler) -> bool:
    """The handler a module-level ``logging.warning()`` installs when nothing is configured yet."""
    formatter = handler.formatter
    return (type(handler) is logging.StreamHandler and handler.stream is sys.stderr
            and formatter is not None and formatter._fmt == logging.BASIC_FORMAT)


def configure_cli_logging() -> None:
    """stemforge's records at INFO, third-party ones at WARNING, one format; keeps handlers someone else
    configured (a test harness's, an embedding program's) and replaces only the implicit default one
    that Beam's import-time warning installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _implicit_default(h)]:
        root.removeHandler(handler)
    logging.basicConfig(level=logging.WARNING, format=FORMAT)
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    silence_startup_noise()


def printable(text: str) -> str:
    """Text safe to print on a terminal: every control, format or unassigned character (a newline or an ANSI
    escape in a file name) written as its escape, ``\\n``, ``\\x1b``, ``\\u202e``, so one record stays one line
    and nothing in a name can restyle or rewrite the terminal."""
    return "".join(ch if not unicodedata.category(ch).startswith("C") else ascii(ch)[1:-1] for ch in text)
