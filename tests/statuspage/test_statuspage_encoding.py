"""bot/statuspage/encoding.py: which Accept-Encoding fields admit gzip, and the gzipped variant's bytes and tag."""

from __future__ import annotations

import gzip
import random

import pytest

from bot.statuspage import encoding


@pytest.mark.parametrize(
    ("field", "accepted"),
    [
        ("gzip, deflate, br, zstd", True),  # Chromium's
        ("gzip", True),
        ("GZip;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("br;q=1.0, *;q=0.1", True),
        (None, False),
        ("", False),
        ("identity", False),  # Python's http.client sends this by default
        ("br, deflate", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # gzip named: that decides, whatever `*` says
        ("*, gzip;q=0", False),
        ("*;q=0, gzip", True),
        ("gzip;q=nonsense", False),
    ],
)
def test_accepts_gzip(field: str | None, accepted: bool) -> None:
    assert encoding.accepts_gzip(field) is accepted


def test_compress_is_deterministic_and_skips_small_bodies() -> None:
    body = b"<p>all systems operational</p>" * 100
    packed = encoding.compress(body)
    assert packed is not None and gzip.decompress(packed) == body and len(packed) < len(body) // 10
    assert encoding.compress(body) == packed  # no timestamp in the header: same body, same bytes
    assert encoding.compress(b"x" * (encoding.MIN_SIZE - 1)) is None
    assert encoding.compress(random.Random(14).randbytes(4096)) is None  # no smaller: not worth a variant


def test_the_gzipped_variant_has_its_own_entity_tag() -> None:
    assert encoding.gzip_etag('"abc"') == '"abc-gzip"'
    assert encoding.gzip_etag("abc") == "abc-gzip"
