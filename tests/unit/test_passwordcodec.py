"""ahcore.passwordcodec called directly: the very text ahserver stored for a password.

The expected codes were made with appPublic's ``rc4.RC4().encode(text, key)``,
the code behind ahserver 1.2.0's ``password_encode``; a site's stored
passwords only keep working while these stay equal.
"""

from __future__ import annotations

import base64

import pytest

from ahcore.passwordcodec import DEFAULT_KEY, SALT, password_decode, password_encode

LONG = "x" * 300  # longer than the 256-byte RC4 box: the keystream wraps

VECTORS = [
    (LONG, DEFAULT_KEY, (
        "QUZVcXg5V1p1STMybG5Ia0s6135dIO65QTY9B3pG0zoDRAb/jLtnoIiFBVGZ/KTyT7sqnj+RD2vz9GHj6JCm"
        "29TpZowhOtySnSlGFL/WR3FCSkXR/ZgTSFwftc44qGFnx01v0adazEsMVSlhcFL2Zns5B2QGweWfSBOiUQqF"
        "5OpxL7S3pnDmmdC61BzgoA+e1z3LD5yqpvg7+gpD6cB1rRQnjIZx9q3nGBu5GFDy9n1rlxAZCydGKYtvKQ4w"
        "FGt86GoO13VFg/FzTn2my4mXAgPWymaWHuFgSjKYPwxDcVIEAjEJA1r6/m11Oxnr7QHxAVECKfUDlfEap/ia"
        "bqMHa31C5viPTfdoiLOVZGYNv9pyexLiVJy/B40FbzxoCNCEmjlGY7R2Nc3jyu4Zhh/E8TZJk3K4q2tvq1ga"
        "og=="
    )),
    ("secret", "clé", "QUZVcXg5V1p1STMybG5IazT4G5BbhA=="),  # a Latin-1 key, as appPublic encodes it
    ("a\x00b\nc", "k", "QUZVcXg5V1p1STMybG5Ia40A5Vnm"),
]


@pytest.mark.parametrize(("text", "key", "code"), VECTORS)
def test_codes_are_appPublics(text: str, key: str, code: str) -> None:
    assert password_encode(text, key) == code
    assert password_decode(code, key) == text


def test_no_key_or_an_empty_one_is_ahservers_default() -> None:
    # ahserver: config.password_key or its built-in key.
    assert password_encode("secret") == password_encode("secret", DEFAULT_KEY)
    assert password_encode("secret", "") == password_encode("secret", DEFAULT_KEY)
    assert password_encode("secret", "other") != password_encode("secret")


def test_the_code_is_the_fixed_salt_then_as_many_bytes_as_the_text() -> None:
    raw = base64.b64decode(password_encode("pässwörd"))
    assert raw.startswith(SALT) and len(raw) == len(SALT) + len("pässwörd".encode())
    assert password_encode("same") == password_encode("same")  # comparable: logins compare codes


def test_the_wrong_key_does_not_give_the_text_back() -> None:
    code = password_encode("secret", "right")
    try:
        assert password_decode(code, "wrong") != "secret"
    except UnicodeDecodeError:
        pass  # the wrong keystream rarely gives UTF-8
