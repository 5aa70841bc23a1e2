"""Excel's encodings detected from a leading sample, the sample never cut inside a character."""

from __future__ import annotations

import codecs
import io

import pytest

from ingest import records
from ingest.textfile import SAMPLE, UnreadableText, codec_for, detect, first_bad_line, text_stream

JP = "account_id,name\nA1,株式会社ミライ物流\nA2,ﾐﾗｲ㈱①\n"


class Socket(io.BytesIO):
    """A request body: read once, no seeking back over the sample."""

    def seekable(self) -> bool:
        return False


def read(data: bytes, encoding: str | None = None, *, stream: type[io.BytesIO] = io.BytesIO) -> str:
    return text_stream(stream(data), encoding).read()


def test_utf8_with_and_without_bom_and_cp932_read_the_same() -> None:
    for data in (JP.encode(), codecs.BOM_UTF8 + JP.encode(), JP.encode("cp932")):
        assert read(data) == JP


def test_short_half_width_katakana_is_cp932_not_windows_1252() -> None:
    assert detect("name\nｶﾌﾞｼｷｶﾞｲｼｬ ﾐﾗｲ\n".encode("cp932"), complete=True) == "cp932"
    assert detect("name\nCafé Müller\n".encode("cp1252"), complete=True) == "cp1252"


@pytest.mark.parametrize("stream", [io.BytesIO, Socket])
@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_a_multibyte_character_across_the_sample_boundary(encoding: str, stream: type[io.BytesIO]) -> None:
    row = "A1,株式会社ミライ物流\n"
    for pad in range(3):  # move the boundary through each byte of a character
        text = "account_id,name\n" + "x" * pad + row * (2 * SAMPLE // len(row.encode(encoding)))
        data = text.encode(encoding)
        assert read(data, stream=stream) == text


def test_only_the_sample_is_read_before_the_first_record() -> None:
    class Counting(io.BytesIO):
        taken = 0

        def read(self, n: int | None = -1) -> bytes:
            data = super().read(n)
            self.taken += len(data)
            return data

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
            n = super().readinto(buffer)
            self.taken += n
            return n

    raw = Counting(("account_id,name\n" + "A1,株式会社ミライ物流\n" * 100_000).encode("cp932"))
    size = len(raw.getvalue())
    first = next(iter(records(text_stream(raw), "csv")))
    assert first[1] == {"account_id": "A1", "name": "株式会社ミライ物流"}
    assert raw.taken <= 2 * SAMPLE < size


def test_shift_jis_names_read_as_cp932() -> None:
    assert codec_for("Shift_JIS") == codec_for("sjis") == codec_for("windows-31j") == "cp932"
    assert read("㈱①".encode("cp932"), codec_for("shift_jis")) == "㈱①"  # strict shift_jis refuses these
    assert codec_for("UTF-8") == "utf-8-sig"
    with pytest.raises(LookupError):
        codec_for("klingon")


def test_bytes_in_no_known_encoding_are_refused() -> None:
    with pytest.raises(UnreadableText) as exc:
        read(bytes(range(128, 256)) * 4)
    assert "not text in an encoding Baton recognises" in str(exc.value)


def test_a_bad_byte_after_the_sample_names_the_line() -> None:
    good = "account_id,name\n" + "A1,Acme\n" * (SAMPLE // 8 + 10)  # the sample is ASCII: read as UTF-8
    data = good.encode() + "A2,株式会社ミライ物流\n".encode("cp932")
    with pytest.raises(UnreadableText) as exc:
        list(records(text_stream(io.BytesIO(data)), "csv"))
    assert exc.value.encoding == "utf-8-sig" and str(exc.value).startswith("not valid UTF-8 text after line")
    assert first_bad_line(io.BytesIO(data), "utf-8-sig") == good.count("\n") + 1
