"""One run to four destinations of four kinds (a signed webhook, Slack, Discord, email), each
configured as ``[destinations.NAME]`` and wired by ``serve`` from its settings and environment
variables, is one message each, through the real channels, against real receivers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from starpod_cron import DeliveryStatus
from starpod_cron.destinations import DestinationConfig, Destinations
from tests.gateway.conftest import config, running_gateway
from tests.gateway.hookreceiver import running_receiver
from tests.gateway.receivers import receiving
from tests.gateway.smtpserver import smtp_server
from tests.gateway.test_webhook import settled, soon


async def test_one_run_to_a_webhook_slack_discord_and_email_is_one_message_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        running_receiver() as hook,
        receiving("slack") as slack,
        receiving("discord") as discord,
        smtp_server("none", auth=False) as mailbox,
    ):
        monkeypatch.setenv("OPS_HOOK_SECRET", hook.secret)
        monkeypatch.setenv("TEAM_SLACK_URL", slack.url)
        monkeypatch.setenv("OPS_DISCORD_URL", discord.url)
        named = {
            "ops-hook": DestinationConfig(
                "webhook", url=f"{hook.url}/ops", secret_env="OPS_HOOK_SECRET"
            ),
            "team": DestinationConfig("slack", url_env="TEAM_SLACK_URL", rate_per_sec=50),
            "ops-discord": DestinationConfig("discord", url_env="OPS_DISCORD_URL"),
            "email": DestinationConfig(
                "email",
                host="127.0.0.1",
                port=mailbox.port,
                security="none",
                sender="cron@example.org",
            ),
        }
        gateway_config = replace(config(tmp_path), destinations=Destinations(named))
        async with running_gateway(gateway_config, str(tmp_path / "gw.db")) as gateway:
            store = gateway.store
            assert store is not None
            to = ("ops-hook", "team", "ops-discord", "email:me@example.org")
            await store.add_jobs([soon("four", *to)])
            delivered = await settled(store, 4)
            await asyncio.sleep(1)  # a second message would have arrived by now
        assert {d.status for d in delivered} == {DeliveryStatus.DELIVERED}
        assert sorted(d.destination for d in delivered) == [
            "dest:email:me@example.org", "dest:ops-discord", "dest:ops-hook", "dest:team",
        ]  # fmt: skip
        (got,) = hook.accepted
        assert hook.unverified == 0 and got.body["data"]["result"] == "done: report four"
        assert len(slack.received) == 1 and "done: report four" in " ".join(slack.texts())
        assert len(discord.received) == 1 and "done: report four" in discord.texts()[0]
        (mail,) = mailbox.messages
        assert mail["To"] == "me@example.org" and "[four] done" in str(mail["Subject"])
        assert mailbox.envelopes == [("cron@example.org", ["me@example.org"])]
