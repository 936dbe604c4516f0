"""What a Slack, Discord or email message says (gateway/channels/text.py), and how long text is
cut into pieces within a service's limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.channels.text import message_of, split_text
from tests.gateway.outboxkit import payload


def rejoined(text: str, pieces: list[str]) -> bool:
    """True if ``pieces`` are ``text`` in order, with the separator (newline or space) each
    piece was cut at dropped."""
    at = 0
    for piece in pieces:
        if not text.startswith(piece, at):
            return False
        at += len(piece)
        if at < len(text) and text[at] in "\n ":
            at += 1
    return at == len(text)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab <&\n"), max_size=400),
    limit=st.integers(min_value=5, max_value=60),
)
def test_pieces_are_the_text_in_order_within_the_limit(text: str, limit: int) -> None:
    def cost(char: str) -> int:
        return 5 if char == "&" else 4 if char == "<" else 1

    pieces = split_text(text, limit, cost)
    assert all(sum(map(cost, piece)) <= limit for piece in pieces)
    assert rejoined(text, pieces), pieces
    assert split_text(text, limit, cost) == pieces  # the same every time (restarts resume)


def test_pieces_cut_at_a_line_end_when_one_is_near() -> None:
    lines = [f"line {i:03d} " + "x" * 40 for i in range(100)]
    pieces = split_text("\n".join(lines), 500)
    assert len(pieces) > 1
    assert all(len(p) <= 500 for p in pieces)
    assert all(p.startswith("line ") and p.endswith("x") for p in pieces)  # whole lines
    assert "\n".join(pieces) == "\n".join(lines)


def test_nothing_to_cut() -> None:
    assert split_text("", 10) == [""]
    assert split_text("short", 10) == ["short"]
    with pytest.raises(ValueError):
        split_text("&", 3, lambda c: 5)


def test_titles_bodies_and_details() -> None:
    done = message_of(payload("report", result="42 rows", cost_usd=0.01234))
    assert done.title == "[report] done" and done.body == "42 rows"
    assert done.details == "run run-1 · scheduled for 2026-12-03T09:00:00+00:00 · cost $0.0123"
    failed = message_of(payload("report", success=False, error="boom", result="partial"))
    assert failed.title == "[report] failed" and failed.body == "boom\n\npartial"
    timeout = message_of(payload("report", success=False, status="timeout", error="slow"))
    assert timeout.title == "[report] timed out"
    notice = message_of(payload("report", kind="job.notice", notice="paused after 3 failures"))
    assert notice.title == "[report] notice" and notice.body == "paused after 3 failures"
    started = message_of(payload("report", kind="run.started"))
    assert started.title == "[report] started" and started.body == ""
    assert "cost" not in started.details  # no cost: left out
    odd = message_of({"type": "run.finished", "data": {"job_name": "a\nb", "success": True}})
    assert odd.title == "[a b] done" and odd.details == ""  # one line, nothing made up
