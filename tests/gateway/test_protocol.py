"""The WebSocket protocol's decoder (gateway/protocol.py), as a table: every frame a client may
send, and the error code of each it may not. No sockets."""

from __future__ import annotations

import pytest

from gateway import protocol


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"id": 1, "type": "cron.list"}', None),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": 200}', None),
        ('{"id": 1, "type": "replay", "since": 0}', None),
        ("{nope", "bad_json"),
        ("[1, 2]", "bad_request"),
        ('{"id": 1, "type": "cron.launch"}', "unknown_type"),
        ('{"id": 1, "type": "cron.get"}', "invalid"),
        ('{"id": 1, "type": "cron.get", "name": 5}', "invalid"),
        ('{"id": 1, "type": "cron.add", "prompt": "p", "colour": "red"}', "invalid"),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": 201}', "invalid"),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": true}', "invalid"),
        ('{"id": 1, "type": "cron.runs", "name": "a", "limit": 2.5}', "invalid"),
        ('{"id": 1, "type": "replay", "since": -1}', "invalid"),
        ('{"id": 1, "type": "replay", "since": 9223372036854775808}', "invalid"),
    ],
)
def test_decode(frame: str, code: str | None) -> None:
    if code is None:
        assert protocol.decode(frame).id == 1
        return
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.decode(frame)
    assert err.value.code == code and str(err.value)
