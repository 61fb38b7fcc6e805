"""The status page's compressed answers: each cached page is gzipped once, when it is rendered.

During an outage the page is fetched by everyone at once, and every browser, monitor and widget
asks for gzip (Accept-Encoding). `/status` is ~160 KB of HTML with 90 bars per component and
~8 KB gzipped; `summary.json` 12 KB and ~1.3 KB. Sending the compressed bytes costs the front a
twentieth of the copying, to the kernel and over the network, for a compression done once per
render (about a millisecond for the three prerendered paths), never per request.

A gzipped answer is another representation of the same resource (RFC 9110 8.8.3): it has an ETag
of its own (Apache's "-gzip" suffix), and both carry `Vary: Accept-Encoding`, so a shared cache
in front of the bot keeps them apart.
"""

from __future__ import annotations

import gzip

MIN_SIZE = 1024  # below this, gzip's header and the client's work outweigh the bytes saved
LEVEL = 6  # zlib's default: within a few per cent of level 9's size here, at a third of its time
VARY = ("Vary", "Accept-Encoding")


def compress(body: bytes) -> bytes | None:
    """The body gzipped (no timestamp, so the same body gives the same bytes); None when small,
    or when gzip makes it no smaller (an image, a font)."""
    if len(body) < MIN_SIZE:
        return None
    packed = gzip.compress(body, compresslevel=LEVEL, mtime=0)
    return packed if len(packed) < len(body) else None


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding field admits gzip: `gzip`, `x-gzip` or `*`, with a q above 0."""
    if not accept_encoding:
        return False
    verdict: bool | None = None
    for item in accept_encoding.split(","):
        coding, _, parameters = item.partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        accepted = _quality(parameters) > 0
        if coding != "*":
            return accepted  # named explicitly: that decides, whatever `*` says
        verdict = accepted
    return bool(verdict)


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0  # a malformed weight: not taken for a yes
    return 1.0


def gzip_etag(etag: str) -> str:
    """The gzipped representation's entity tag: the identity one's, with "-gzip" inside the quotes."""
    return etag[:-1] + '-gzip"' if etag.endswith('"') else etag + "-gzip"
