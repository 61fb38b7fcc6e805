"""The log filter: secrets masked in messages and tracebacks, even when traceback formatting fails."""

from __future__ import annotations

import logging
import sys

import pytest

from bot.runtime.logs import RedactingFilter, redact


def _record_with_exception(message: str) -> logging.LogRecord:
    try:
        raise RuntimeError("token xoxb-123-456-secret leaked into an error")
    except RuntimeError:
        exc_info = sys.exc_info()
    return logging.LogRecord("bot", logging.ERROR, __file__, 1, message, None, exc_info)


def test_tokens_and_named_secrets_are_masked() -> None:
    assert redact("Bearer abc.def and xapp-1-A-2 and xoxp-9") == "[redacted] and [redacted] and [redacted]"
    assert redact("signing s3cr3t-value here", ("s3cr3t-value",)) == "signing [redacted] here"
    record = _record_with_exception("sending with xoxb-123-456-secret")
    assert RedactingFilter(("s3cr3t-value",)).filter(record)
    assert "xoxb-" not in record.getMessage() and "xoxb-" not in (record.exc_text or "")
    assert "RuntimeError" in (record.exc_text or "")


def test_a_failing_traceback_formatter_falls_back_to_plain_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: logging.Formatter, exc_info: object) -> str:
        raise SystemError("AST constructor recursion depth mismatch")  # CPython 3.11, two threads at once

    monkeypatch.setattr(logging.Formatter, "formatException", broken)
    record = _record_with_exception("boom")
    assert RedactingFilter().filter(record)
    text = record.exc_text or ""
    assert text.startswith("Traceback (most recent call last):") and "_record_with_exception" in text
    assert "RuntimeError: token [redacted] leaked" in text
