"""Logging set-up, with a filter that masks anything shaped like a Slack token or a bearer secret."""

from __future__ import annotations

import logging
import re
import sys
import traceback

# Slack tokens (xoxb-, xoxp-, xoxa-, xoxe-, xapp-) and Authorization headers, wherever they appear.
SECRET = re.compile(r"(xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?i:bearer)\s+[^\s'\"]+)")


# A secret is masked as a whole value; one shorter than this cannot be a real secret (run refuses
# it, see bot/config_checks.py), and masking it would mangle every line that holds its letters.
MIN_MASKED = 8


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    text = SECRET.sub("[redacted]", text)
    for secret in extra:
        if len(secret) >= MIN_MASKED:
            text = text.replace(secret, "[redacted]")
    return text


# Bolt reads SLACK_BOT_TOKEN itself and warns that it is unused because the app authorises with the
# token it is given (see bot/app.py); the warnings are true but alarm operators for no reason.
BOLT_NOISE = ("`token` will be unused", "`token` (or SLACK_BOT_TOKEN env variable) will be ignored")


class QuietBoltFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "slack_bolt" and any(n in record.getMessage() for n in BOLT_NOISE))


def _plain_traceback(exc: BaseException) -> str:
    """The frames and the exception, without source lines (so without ast)."""
    frames = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in traceback.extract_tb(exc.__traceback__)]
    return "\n".join(["Traceback (most recent call last):", *frames, *traceback.format_exception_only(exc)]).rstrip()


class RedactingFilter(logging.Filter):
    """Last line of defence: the code never logs secrets, and this catches what a library might."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if len(s) >= MIN_MASKED)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            try:
                formatted = logging.Formatter().formatException(record.exc_info)
            except SystemError:
                # CPython 3.11 draws its traceback carets with ast.parse, which is not thread-safe:
                # two threads logging at once can fail here. Without carets, the text is the same.
                formatted = _plain_traceback(record.exc_info[1])
            record.exc_text = redact(formatted, self.secrets)
        return True


def configure(level: str, secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    handler.addFilter(QuietBoltFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO")
    # slack_sdk logs full request bodies at DEBUG; keep it at INFO even when we debug.
    logging.getLogger("slack_sdk").setLevel(max(root.level, logging.INFO))
    logging.getLogger("apscheduler").setLevel(max(root.level, logging.WARNING))
    # Alembic says "Context impl SQLiteImpl." and each revision it runs at INFO: only worth a line
    # when debugging.
    logging.getLogger("alembic").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
