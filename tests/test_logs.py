"""Secrets never reach a log line (tracebacks included); run lines carry their context."""

from __future__ import annotations

import io
import logging

from telegram.error import InvalidToken

from starpod_cron.logs import MASK, RedactingFormatter, redact, register_secret, run_log

BOT_TOKEN = "987654321:AAH-just-an-example_token-value"


def test_registered_secrets_and_known_shapes_are_masked() -> None:
    register_secret("sk-live-0123456789abcdef")
    register_secret("abc")  # too short to mask safely: ordinary words would vanish
    text = (
        "key sk-live-0123456789abcdef, url https://api.telegram.org/bot"
        f"{BOT_TOKEN}/getMe, header Authorization: Bearer eyJhbGciOi.payload.sig, abc"
    )
    masked = redact(text)
    assert "sk-live" not in masked and BOT_TOKEN not in masked and "eyJhbGciOi" not in masked
    assert masked.count(MASK) == 3 and masked.endswith(", abc")
    assert "/bot[REDACTED]/getMe" in masked and "Bearer [REDACTED]" in masked


def test_a_traceback_holding_the_token_is_masked() -> None:
    register_secret(BOT_TOKEN)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        try:  # what python-telegram-bot raises when the Bot API rejects a token
            raise InvalidToken(f"The token `{BOT_TOKEN}` was rejected by the server.")
        except InvalidToken:
            logger.exception("polling failed for %s", BOT_TOKEN)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "Traceback" in output and "InvalidToken" in output
    assert BOT_TOKEN not in output and BOT_TOKEN.split(":")[1] not in output


def test_run_lines_carry_job_run_and_action() -> None:
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("tests.runlog")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        run_log(logger, "standup", "r-1").info("started (attempt %d)", 2, action="start")
    finally:
        logger.removeHandler(handler)
    (record,) = records
    assert record.getMessage() == "job standup run r-1: started (attempt 2)"
    assert (record.job, record.run_id, record.action) == ("standup", "r-1", "start")  # type: ignore[attr-defined]
