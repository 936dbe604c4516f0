"""``--deliver-to`` / ``--alerts-to`` and ``starpod-cron deliveries list|retry``: a run made
by ``jobs run`` in the CLI's own process plans its named destinations (sent later by a
gateway's outbox); a dead delivery is listed and retried."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starpod_cron import CronStore
from tests.cli.conftest import CLI, snapshot

TOML = """
[executor]
kind = "python"
target = "tests.cli.targets:run"

[destinations.ops]
kind = "webhook"
url = "https://example.org/hooks/ops"
secret_env = "OPS_SECRET"

[destinations.pager]
kind = "webhook"
url = "https://example.org/hooks/pager"
secret_env = "PAGER_SECRET"
"""


def write_config(tmp_path: Path) -> str:
    path = tmp_path / "agent.toml"
    path.write_text(TOML)
    return str(path)


def kill(db: str, delivery_id: int) -> None:
    """The outbox's verdict on a rejected message: dead."""

    async def main() -> None:
        store = await CronStore.open(db)
        try:
            for claimed in await store.claim_deliveries("w", 10, 30, ["dest:"]):
                if claimed.id == delivery_id:
                    await store.finish_delivery(claimed.id, "w", delivered=False, error="400 no")
        finally:
            await store.close()

    asyncio.run(main())


def test_jobs_run_plans_named_destinations_and_dead_ones_are_retried(
    cli: CLI, tmp_path: Path, db: str
) -> None:
    config = write_config(tmp_path)
    added = cli(
        "--config", config, "--json", "jobs", "add", "report", "summarize", "--every", "1h",
        "--deliver-to", "ops", "--deliver-to", "telegram:42", "--alerts-to", "pager",
    )  # fmt: skip
    assert added.code == 0, added.err
    job = cli("--json", "jobs", "show", "report").json["data"]
    assert (job["deliver_to"], job["alerts_to"]) == (["ops", "telegram:42"], ["pager"])
    assert cli("--config", config, "jobs", "run", "report").code == 0
    listed = cli("--config", config, "--json", "deliveries", "list", "--status", "pending")
    assert listed.code == 0, listed.err
    pending = {d["destination"]: d for d in listed.json["data"]["deliveries"]}
    assert set(pending) == {"dest:ops", "tg:42"}  # the result, not the alert (it succeeded)
    ops = pending["dest:ops"]
    kill(db, ops["id"])
    dead = cli("--config", config, "--json", "deliveries", "list").json["data"]
    assert [d["id"] for d in dead["deliveries"]] == [ops["id"]]
    assert dead["counts"]["dead"] == 1 and dead["deliveries"][0]["last_error"] == "400 no"
    shown = cli("--config", config, "deliveries", "list")
    assert "dest:ops" in shown.out and "400 no" in shown.out
    again = cli("--config", config, "deliveries", "retry", str(ops["id"]), "999")
    assert again.code == 1  # 999 is not dead: said, and the exit code says it
    assert f"Delivery {ops['id']} will be sent again" in again.out
    assert "Delivery 999 is not dead" in again.out
    assert cli("--config", config, "--json", "deliveries", "list").json["data"]["total"] == 0


def test_a_destination_not_declared_is_refused_and_nothing_written(
    cli: CLI, tmp_path: Path, db: str
) -> None:
    config = write_config(tmp_path)
    cli("--config", config, "jobs", "add", "keep", "p", "--every", "1h")
    before = snapshot(db)
    bad = cli(
        "--config", config, "jobs", "add", "x", "p", "--every", "1h", "--deliver-to", "nowhere"
    )
    assert bad.code == 2 and "no destination named 'nowhere'" in bad.err
    form = cli("--config", config, "jobs", "edit", "keep", "--alerts-to", "email:not-an-address")
    assert form.code == 2 and "email:ADDRESS" in form.err
    assert snapshot(db) == before
