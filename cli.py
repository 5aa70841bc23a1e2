"""Argument types shared by app.py's subcommands: a bad value is one line naming the form expected."""

from __future__ import annotations

import argparse
from datetime import date

from alerts.textfile import codec_for
from alerts.values import parse_date


def as_of_date(text: str) -> date:
    """`--as-of`: YYYY-MM-DD (2026/11/30 too, as in the files)."""
    try:
        return parse_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-30") from None


def encoding_name(text: str) -> str:
    """`--encoding`: a text encoding Python knows; Shift_JIS reads as CP932, as Windows writes it."""
    try:
        return codec_for(text)
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an encoding Baton knows: use utf-8 or cp932 (Shift_JIS from Excel in Japan)"
        ) from None
