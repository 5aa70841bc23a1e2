"""Bytes to text for ingest: UTF-8 (with or without Excel's byte-order mark) or, from Excel in Japan, CP932.

The encoding is found from a leading sample, never the whole file (files reach 200 MB and the API streams
its body): the sample is replayed in front of the rest, so nothing is read twice."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable
from typing import IO, Any

SAMPLE = 64 * 1024
# What Excel and the systems around it write. Shift_JIS as Windows writes it is CP932 (it has ①, ㈱ and
# the NEC and IBM kanji Python's strict shift_jis codec refuses), so every Shift_JIS name reads as CP932.
CANDIDATES = ("cp932", "euc_jp", "cp1252")
_AS_CP932 = {"shift_jis", "shiftjis", "sjis", "x_sjis", "ms_kanji", "cp932", "ms932", "windows_31j"}
_NAMES = {"utf_8": "UTF-8", "utf_8_sig": "UTF-8", "cp932": "Shift_JIS (CP932)", "euc_jp": "EUC-JP"}


class UnreadableText(Exception):
    """The bytes are not text in ``encoding`` (None: in no encoding Baton recognises)."""

    def __init__(self, encoding: str | None, after_line: int | None = None) -> None:
        self.encoding, self.after_line = encoding, after_line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.encoding is None:
            return "not text in an encoding Baton recognises (UTF-8, Shift_JIS/CP932, EUC-JP or Windows-1252)"
        where = f" after line {self.after_line}" if self.after_line else ""
        return f"not valid {label(self.encoding)} text{where}"


def label(encoding: str) -> str:
    name = codecs.lookup(encoding).name.replace("-", "_")
    return _NAMES.get(name, encoding)


def codec_for(name: str) -> str:
    """Python's codec for an encoding name from a user or a Content-Type; LookupError if unknown."""
    key = name.strip().strip('"').lower().replace("-", "_")
    if key in _AS_CP932:
        return "cp932"
    codecs.lookup(key)
    return "utf-8-sig" if codecs.lookup(key).name == "utf-8" else key  # a BOM is never part of the data


def detect(sample: bytes, *, complete: bool) -> str:
    """The encoding of a leading ``sample`` (the whole input when ``complete``); UnreadableText if none fits.

    Valid UTF-8 is UTF-8 (ASCII included); otherwise charset-normalizer chooses among CANDIDATES, and CP932
    wins whenever it fits: a short line of half-width katakana also reads as Windows-1252 accents."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if not complete:  # cut at a line end, so the sample never ends inside a multibyte character
        cut = sample.rfind(b"\n")
        sample = sample[: cut + 1] if cut > 0 else sample
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    found = [m.encoding for m in from_bytes(sample, cp_isolation=list(CANDIDATES))]
    if not found:
        raise UnreadableText(None)
    return "cp932" if "cp932" in found else found[0]


class _Replay(io.RawIOBase):
    """``head`` then the rest of ``raw``: the sample read for detection, given back to the reader."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self._head, self._raw = memoryview(head), raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        return self._raw.readinto(buffer)  # type: ignore[attr-defined]


def text_stream(raw: IO[bytes], encoding: str | None = None) -> io.TextIOWrapper:
    """Text from ``raw`` in ``encoding``, or in the one detected from its first 64 KB.

    Newlines pass through untouched (CRLF from Excel included) for the csv module to read."""
    head = b""
    while len(head) < SAMPLE:  # a socket's read may return less than asked before the end
        chunk = raw.read(SAMPLE - len(head))
        if not chunk:
            break
        head += chunk
    enc = codec_for(encoding) if encoding else detect(head, complete=len(head) < SAMPLE)
    if raw.seekable():  # a file: step back over the sample rather than replay it through Python code
        raw.seek(-len(head), io.SEEK_CUR)
        return io.TextIOWrapper(raw, encoding=enc, newline="")  # type: ignore[type-var]
    return io.TextIOWrapper(io.BufferedReader(_Replay(head, raw)), encoding=enc, newline="")


def first_bad_line(lines: Iterable[bytes], encoding: str) -> int | None:
    """The 1-based number of the first line that is not ``encoding`` text: for the error message, so it
    is only called once a file has failed, and reads it again line by line."""
    for n, line in enumerate(lines, start=1):
        try:
            line.decode(encoding)
        except UnicodeDecodeError:
            return n
    return None
