"""What an HTTP destination's answer means for a delivery (gateway/channels/http.py)."""

from __future__ import annotations

import httpx
import pytest

from gateway.channels.http import answer_error, transport_error, wait_secs


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body)


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind"),
    [
        (200, {}, b"", None),
        (204, {}, b"", None),
        (429, {"retry-after": "3"}, b"", ("wait", 3.0)),
        (429, {}, b'{"retry_after": 0.25, "global": false}', ("wait", 0.25)),
        (503, {"retry-after-ms": "1500"}, b"", ("wait", 1.5)),
        (500, {}, b"boom", "attempt"),
        (502, {}, b"", "attempt"),
        (408, {}, b"", "attempt"),
        (401, {}, b"", "refusing"),
        (403, {}, b"", "refusing"),
        (404, {}, b"no such hook", "refusing"),
        (400, {}, b"invalid_payload", "dead"),
        (413, {}, b"", "dead"),
    ],
)
def test_answers(status: int, headers: dict[str, str], body: bytes, kind: object) -> None:
    error = answer_error("webhook 'ops'", answer(status, headers, body))
    if kind is None:
        assert error is None
        return
    assert error is not None
    assert str(error).startswith(f"webhook 'ops' answered {status}")
    if isinstance(kind, tuple):
        assert error.retry_after == pytest.approx(kind[1])
        assert not error.permanent and not error.refusing
    else:
        assert error.retry_after is None
        assert error.refusing is (kind == "refusing")
        assert error.permanent is (kind == "dead")
    if body:
        assert body.decode() in str(error)


def test_http_date_and_garbage() -> None:
    assert wait_secs(answer(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert wait_secs(answer(503, {"retry-after": "soon"})) is None


def test_no_answer() -> None:
    request = httpx.Request("POST", "https://hooks.example/T000/SECRET")
    refused = transport_error("slack 'team'", httpx.ConnectError("refused", request=request))
    assert refused.refusing and "unreachable" in str(refused)
    timed_out = transport_error("slack 'team'", httpx.ReadTimeout("slow", request=request))
    assert not timed_out.refusing and not timed_out.permanent
    assert "SECRET" not in str(refused) + str(timed_out)
