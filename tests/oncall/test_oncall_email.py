"""Page e-mails through a real SMTP server: STARTTLS before AUTH, implicit TLS, no password in the clear."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from oncall_fixtures import utc
from smtp_server import PASSWORD, USER, smtp_server

from bot.oncall.email import EmailError, PageEmail, compose_page_email, parse_smtp_url, send_email

PAGE = PageEmail(
    incident_id="INC-2026-12-02-001",
    title="Checkout <down> & payments failing",
    severity="P0",
    status="Investigating",
    thread_url="https://example.slack.com/archives/C1/p1700000000000100",
    acknowledge_url="https://bot.example.com/ack?t=abc",
    step="step 1 of 3",
)
TO = ["ops-oncall@example.com", "alice@example.com"]


def _message():  # type: ignore[no-untyped-def]
    return compose_page_email(PAGE, to=TO, sender="incident-bot@example.com", now=utc(2026, 12, 2, 3))


def test_compose() -> None:
    message = _message()
    assert message["Subject"] == "[P0] INC-2026-12-02-001: Checkout <down> & payments failing"
    assert message["Message-ID"].endswith("@example.com>") and "INC-2026-12-02-001" in message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert PAGE.thread_url in plain and "Acknowledge: https://bot.example.com/ack?t=abc" in plain
    assert "Checkout &lt;down&gt; &amp; payments" in html and f'href="{PAGE.thread_url}"' in html


def test_a_notices_message_id_is_its_own_and_the_same_on_every_attempt() -> None:
    first = compose_page_email(PAGE, to=TO, sender="incident-bot@example.com", now=utc(2026, 12, 2, 3), notice_id=12)
    again = compose_page_email(PAGE, to=TO, sender="incident-bot@example.com", now=utc(2026, 12, 2, 4), notice_id=12)
    other = compose_page_email(PAGE, to=TO, sender="incident-bot@example.com", now=utc(2026, 12, 2, 3), notice_id=13)
    assert first["Message-ID"] == again["Message-ID"] == "<INC-2026-12-02-001.page-12@example.com>"
    assert other["Message-ID"] == "<INC-2026-12-02-001.page-13@example.com>"
    assert first["Date"] != again["Date"]
    # Without a notice (not a page's): a fresh id each time, as before.
    assert _message()["Message-ID"] != _message()["Message-ID"]


def _received(recorder) -> list:  # type: ignore[no-untyped-def]
    return [email.message_from_bytes(e.original_content, policy=email.policy.default) for e in recorder.envelopes]


def test_starttls_before_auth(tmp_path: Path) -> None:
    with smtp_server(tmp_path, starttls=True, auth=True) as (recorder, port, context):
        send_email(_message(), smtp_url=f"smtp://{USER}:{PASSWORD.replace('!', '%21')}@127.0.0.1:{port}",
                   tls_context=context)
    assert recorder.logins == [(USER, True)]
    assert len(recorder.envelopes) == 1
    assert sorted(recorder.envelopes[0].rcpt_tos) == sorted(TO)
    (received,) = _received(recorder)
    assert received["Subject"] == "[P0] INC-2026-12-02-001: Checkout <down> & payments failing"
    assert PAGE.thread_url in received.get_body(("plain",)).get_content()
    assert PASSWORD.encode() not in (recorder.envelopes[0].original_content or b"")


def test_starttls_without_credentials(tmp_path: Path) -> None:
    with smtp_server(tmp_path, starttls=True) as (recorder, port, context):
        send_email(_message(), smtp_url=f"smtp://127.0.0.1:{port}", tls_context=context)
    assert len(recorder.envelopes) == 1


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    with smtp_server(tmp_path, starttls=True) as (recorder, port, _), pytest.raises(EmailError) as caught:
        send_email(_message(), smtp_url=f"smtp://127.0.0.1:{port}")  # the default context: verifies
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value) or "SSL" in str(caught.value)
    assert recorder.envelopes == []


def test_credentials_are_never_sent_without_tls(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as (recorder, port, context), pytest.raises(EmailError) as caught:
        send_email(_message(), smtp_url=f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}", tls_context=context)
    assert "refusing to send the password unencrypted" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert recorder.envelopes == [] and recorder.logins == []


def test_plain_smtp_without_credentials_or_starttls(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as (recorder, port, _):
        send_email(_message(), smtp_url=f"smtp://127.0.0.1:{port}")
    assert len(recorder.envelopes) == 1


def test_smtps_implicit_tls(tmp_path: Path) -> None:
    with smtp_server(tmp_path, implicit_tls=True) as (recorder, port, context):
        send_email(_message(), smtp_url=f"smtps://127.0.0.1:{port}", tls_context=context)
    assert len(recorder.envelopes) == 1


def test_wrong_password_is_an_error_without_the_password(tmp_path: Path) -> None:
    with smtp_server(tmp_path, starttls=True, auth=True) as (recorder, port, context), \
            pytest.raises(EmailError) as caught:
        # aiosmtpd stalls after a failed AUTH instead of answering 535: a short timeout ends it.
        send_email(_message(), smtp_url=f"smtp://{USER}:wrong-one@127.0.0.1:{port}", tls_context=context, timeout=1)
    assert "wrong-one" not in str(caught.value)
    assert recorder.envelopes == []


def test_smtp_url_parsing() -> None:
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    target = parse_smtp_url("smtp://a%40b:p%3Ass@mail.example.com:587")
    assert (target.username, target.password, target.port) == ("a@b", "p:ss", 587)
    with pytest.raises(EmailError):
        parse_smtp_url("http://mail.example.com")
