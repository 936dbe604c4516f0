"""Every number in agent.toml has bounds and every identity must be named: a value no one can
mean is refused with the key named, by every command (one line, exit code 2), while every value
the tests and shipped examples use still loads."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from starpod_cron import ConfigError, SchedulerSettings, StoreSettings
from starpod_cron.access import Principal
from starpod_cron.bounds import rules
from starpod_cron.cli.main import main
from starpod_cron.config import (
    ExecutorConfig,
    GatewayConfig,
    MaintenanceConfig,
    StoreConfig,
    TelegramConfig,
    TokenConfig,
    load_config,
    parse_config,
)
from starpod_cron.operations import UserLimits
from tests.docstext import documentation
from tests.processes import run_cli

ROOT = Path(__file__).resolve().parent.parent
OPENAI = "[executor]\nkind = 'openai'\n"
COMMAND = "[executor]\nkind = 'command'\nargv = ['true']\n"
SECRET = "s3cret-token-0123456789"
TOKEN = f'[gateway.tokens]\n"{SECRET}" = '
ENTRY = "[gateway] tokens entry 1 user_id"

BAD = [
    ("[cron]\nmax_concurrent_runs = 100000000000000000000000", "[cron] max_concurrent_runs"),
    ("[cron]\nmax_concurrent_runs = 0", "[cron] max_concurrent_runs"),
    ("[cron]\ntick_secs = inf", "[cron] tick_secs"),
    ("[cron]\ntick_secs = nan", "[cron] tick_secs"),
    ("[cron]\ntick_secs = 0", "[cron] tick_secs"),
    ("[cron]\ntick_secs = 86400", "[cron] tick_secs"),
    ("[cron]\nlease_secs = 1e9", "[cron] lease_secs"),
    ("[cron]\nshutdown_timeout_secs = 1e9", "[cron] shutdown_timeout_secs"),
    ("[cron]\ncancel_grace_secs = -1", "[cron] cancel_grace_secs"),
    ("[cron]\nnotify_timeout_secs = 0", "[cron] notify_timeout_secs"),
    ("[cron]\nclaim_ahead_secs = -inf", "[cron] claim_ahead_secs"),
    ("[cron]\nretry_backoff_secs = [0.5, 1e12]", "[cron] retry_backoff_secs"),
    ("[cron]\nretry_backoff_secs = [-1]", "[cron] retry_backoff_secs"),
    (f"[cron]\nretry_backoff_secs = [{', '.join(['1'] * 101)}]", "[cron] retry_backoff_secs"),
    ("[cron]\nruns_keep_per_job = 10000000000", "[cron] runs_keep_per_job"),
    ("[cron]\ndefault_timeout_secs = 1e10", "[cron] default_timeout_secs"),
    ("[cron]\ndefault_max_retries = 1000", "[cron] default_max_retries"),
    ("[cron]\nmisfire_grace_secs = 1e12", "[cron] misfire_grace_secs"),
    ("[cron]\njitter_secs = nan", "[cron] jitter_secs"),
    ("[cron]\nqueue_limit = 0", "[cron] queue_limit"),
    ("[store]\nurl = ''", "[store] url"),
    ("[gateway]\nhost = ' '", "[gateway] host"),
    ("[gateway]\nport = 70000", "[gateway] port"),
    ("[gateway]\nhttp_port = -1", "[gateway] http_port"),
    ("[gateway]\ntokens_env = ''", "[gateway] tokens_env"),
    ("[gateway]\nclient_queue_size = 1000000000", "[gateway] client_queue_size"),
    ("[gateway]\nmax_frame_bytes = 1000000000000", "[gateway] max_frame_bytes"),
    ("[gateway]\ndelivery_max_attempts = 1000000", "[gateway] delivery_max_attempts"),
    ("[gateway]\ndelivery_backoff_secs = [1e9]", "[gateway] delivery_backoff_secs"),
    ("[gateway]\ndelivery_backoff_secs = []", "[gateway] delivery_backoff_secs"),
    ("[gateway]\ndelivery_lease_secs = 0", "[gateway] delivery_lease_secs"),
    ("[gateway]\nmax_jobs_per_user = -1", "[gateway] max_jobs_per_user"),
    ("[gateway]\nmax_jobs_per_user = 10000000", "[gateway] max_jobs_per_user"),
    ("[gateway]\nmin_interval_secs = 1e12", "[gateway] min_interval_secs"),
    ("[gateway]\nmax_prompt_chars = 10000000", "[gateway] max_prompt_chars"),
    ("[gateway]\nheartbeat_secs = 0.01", "[gateway] heartbeat_secs"),
    (TOKEN + '{ user_id = "" }', ENTRY),
    (TOKEN + '{ user_id = " " }', ENTRY),
    (TOKEN + '{ user_id = "a\\u0000" }', ENTRY),
    (TOKEN + '{ user_id = "alice", admin = 1 }', "[gateway] tokens entry 1 admin"),
    ('[gateway.tokens]\n"" = { user_id = "alice" }', "[gateway] tokens entry 1: must"),
    ('[gateway.tokens]\n"two words" = { user_id = "alice" }', "[gateway] tokens entry 1: must"),
    ('[gateway.tokens]\n"a" = { user_id = "alice" }', "[gateway] tokens entry 1: must"),
    (
        TOKEN + '{ user_id = "alice" }\n"0123456789abcde" = { user_id = "bob" }',
        "[gateway] tokens entry 2: must be a token of at least 16 characters",
    ),
    (OPENAI + "request_timeout_secs = 1e9", "[executor] request_timeout_secs"),
    (OPENAI + "max_history_messages = 1000000", "[executor] max_history_messages"),
    (OPENAI + "temperature = 5", "[executor] temperature"),
    (OPENAI + "max_tokens = 0", "[executor] max_tokens"),
    (COMMAND + "output_limit_bytes = 1000000000000", "[executor] output_limit_bytes"),
    (COMMAND + "kill_grace_secs = 1e6", "[executor] kill_grace_secs"),
    ("[telegram]\nallowed_user_ids = [0]", "[telegram] allowed_user_ids"),
    ("[telegram]\nallowed_user_ids = [100000000000000000000]", "[telegram] allowed_user_ids"),
    ("[telegram]\nnotify_chat_ids = [-100000000000000000000]", "[telegram] notify_chat_ids"),
    ("[telegram]\npoll_timeout_secs = 1e6", "[telegram] poll_timeout_secs"),
    ("[telegram]\nretry_max_secs = 0", "[telegram] retry_max_secs"),
    ("[telegram]\nleader_lease_secs = 1000", "[telegram] leader_lease_secs"),
    ("[telegram]\ntoken_env = ''", "[telegram] token_env"),
    ("[maintenance]\nruns_days = 1000000000", "[maintenance] runs_days"),
    ("[maintenance]\nsessions_hours = -1", "[maintenance] sessions_hours"),
    ("[maintenance]\ndeliveries_days = -1", "[maintenance] deliveries_days"),
    ("[maintenance]\ncron = '61 * * * *'", "[maintenance] cron"),
    ("[maintenance]\ncron = 'every day'", "[maintenance] cron"),
]


@pytest.mark.parametrize(("text", "key"), BAD)
def test_a_value_no_one_can_mean_is_refused_with_its_key(
    text: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="agent.toml")
    message = str(err.value)
    assert f"agent.toml {key}" in message and re.search(r": (must|expected) ", message), message
    assert SECRET not in message  # a token is never shown, even a refused one
    path = tmp_path / "agent.toml"
    path.write_text(text)
    db = str(tmp_path / "jobs.db")
    assert main(["--config", str(path), "--db", db, "jobs", "list"]) == 2
    out, errors = capsys.readouterr()
    assert out == "" and errors.count("\n") == 1, errors
    assert errors.startswith("starpod-cron: error: ") and key in errors, errors
    assert not Path(db).exists()  # refused before anything is opened


GOOD = [
    "[cron]\nretry_backoff_secs = [0.5, 1]\ntick_secs = 1\nlease_secs = 5",
    "[cron]\ntick_secs = 0.2\nlease_secs = 0.3\nshutdown_timeout_secs = 0.1\n"
    "cancel_grace_secs = 0.1\nnotify_timeout_secs = 0.2\nmax_concurrent_runs = 1000000",
    "[cron]\nmisfire_grace_secs = 0\njitter_secs = 86400\ndefault_timeout_secs = 2592000",
    "[gateway]\nport = 0\nhttp_port = 0\nmax_jobs_per_user = 0\nmin_interval_secs = 0\n"
    "delivery_backoff_secs = [0.2, 0.5]\ndelivery_lease_secs = 2\ndelivery_max_attempts = 100\n"
    "heartbeat_secs = 0.5\nmax_prompt_chars = 65536\n"
    '[gateway.tokens]\n"0123456789abcdef" = { user_id = "alice" }\n'
    '"root-token-0123456789" = { user_id = "root", admin = true }',
    "[telegram]\nallowed_user_ids = [42]\nnotify_chat_ids = [-1001234567890]\n"
    "poll_timeout_secs = 1\nretry_max_secs = 0.5\nleader_lease_secs = 3",
    "[maintenance]\ncron = '0 */6 * * *'\nruns_days = 30\nsessions_hours = 48\noptimize = true",
    OPENAI + "request_timeout_secs = 0.5\ntemperature = 0.2\nmax_tokens = 1024",
    COMMAND + "output_limit_bytes = 1024\nkill_grace_secs = 0.1",
]


@pytest.mark.parametrize("text", GOOD)
def test_values_the_tests_and_examples_use_still_load(text: str) -> None:
    parse_config(text)


def test_the_shipped_examples_still_load() -> None:
    load_config(ROOT / "agent.toml.example")
    blocks = re.findall(r"```toml\n(.*?)```", documentation(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        parse_config(block, source="README.md")


SECTIONS = [
    StoreSettings,
    SchedulerSettings,
    StoreConfig,
    ExecutorConfig,
    GatewayConfig,
    TelegramConfig,
    MaintenanceConfig,
    TokenConfig,
    UserLimits,
]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_every_number_in_every_section_declares_its_bounds(cls: type) -> None:
    """A new numeric key needs ``metadata=whole(...)`` / ``within(...)`` / ``each(...)``
    (starpod_cron/bounds.py); then it is checked, documented and tested like the others."""
    hints = typing.get_type_hints(cls)
    declared = rules(cls)
    for f in dataclasses.fields(cls):
        kinds = {a for a in typing.get_args(hints[f.name]) if a is not type(None)}
        kinds |= {hints[f.name]}
        if kinds & {int, float} or hints[f.name] in (tuple[int, ...], tuple[float, ...]):
            assert f.name in declared, f"{cls.__name__}.{f.name} has no bounds"


def test_library_settings_refuse_the_same_values() -> None:
    with pytest.raises(ConfigError, match="max_concurrent_runs: must be a whole number"):
        SchedulerSettings(max_concurrent_runs=10**23)
    with pytest.raises(ConfigError, match="tick_secs: must be"):
        SchedulerSettings(tick_secs=float("nan"))
    with pytest.raises(ConfigError, match="user_id: must not be empty"):
        TokenConfig("")


@pytest.mark.timeout(60)
@pytest.mark.slow
async def test_a_bad_maintenance_cron_is_refused_by_every_command(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text("[maintenance]\ncron = '61 3 * * *'\n")
    for command in (["jobs", "list"], ["status"], ["nodes", "list"], ["serve"]):
        code, out, err = await run_cli(tmp_path, *command)
        assert code == 2, (command, code, out, err)
        assert err.count("\n") == 1 and "[maintenance] cron: " in err, (command, err)
        assert "minute field '61'" in err


JOB = '[[jobs]]\nname = "standup"\nprompt = "post it"\nevery = "1h"\n'
BAD_JOBS = [
    (JOB + "max_retries = 1000000000", "max_retries must be an integer from 0 to 100"),
    (JOB + "max_retries = true", "max_retries must be an integer"),
    (JOB + "timeout_secs = -1", "timeout_secs must be"),
    (JOB + "jitter_secs = 1e12", "jitter_secs must be"),
    (JOB + "max_instances = 0", "max_instances must be"),
    (JOB + 'timezone = "Mars/Base"', "unknown time zone 'Mars/Base'"),
    (JOB + 'session_mode = "shared"', "session_mode must be"),
    (JOB.replace('every = "1h"', 'cron = "61 * * * *"'), "minute field '61'"),
    (JOB.replace('"post it"', '""'), "prompt must be"),
]


@pytest.mark.parametrize(("text", "says"), BAD_JOBS)
def test_a_bad_jobs_table_is_refused_by_every_command(
    text: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    db = str(tmp_path / "jobs.db")
    for command in (["jobs", "list"], ["status"], ["jobs", "add", "x", "p", "--every", "1h"]):
        assert main(["--config", str(path), "--db", db, *command]) == 2, command
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, (command, err)
        assert err.startswith("starpod-cron: error: ") and "[[jobs]] #1 (standup): " in err
        assert says in err, (command, err)
    assert not Path(db).exists()  # refused before anything is opened


@pytest.mark.timeout(60)
@pytest.mark.slow
async def test_serve_refuses_a_bad_jobs_table_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(JOB + "max_retries = 1000000000")
    code, out, err = await run_cli(tmp_path, "serve", "--port", "0", "--http-port", "0")
    assert code == 2 and err.count("\n") == 1, (code, out, err)
    assert "agent.toml [[jobs]] #1 (standup): max_retries must be" in err, err
    assert not (tmp_path / "starpod-cron.db").exists()  # refused before the store is opened


def test_tokens_from_the_environment_need_a_user_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.ws import load_tokens

    monkeypatch.setenv("STARPOD_GATEWAY_TOKENS", f'{{"{SECRET}": {{"user_id": ""}}}}')
    with pytest.raises(ConfigError, match=r"\$STARPOD_GATEWAY_TOKENS entry 1 user_id: must") as err:
        load_tokens(GatewayConfig())
    assert SECRET not in str(err.value)
    monkeypatch.setenv("STARPOD_GATEWAY_TOKENS", '{"": {"user_id": "alice"}}')
    with pytest.raises(ConfigError, match=r"\$STARPOD_GATEWAY_TOKENS entry 1: must"):
        load_tokens(GatewayConfig())


# $STARPOD_GATEWAY_TOKENS entries are read by the [gateway.tokens] checker: a string is not a
# boolean, a misspelled key is not ignored, a number is not a user id, and tokens are long
ENV_BAD = [
    ('{"user_id": "mallory", "admin": "false"}', "entry 1 admin: expected true or false"),
    ('{"user_id": "mallory", "admin": 0}', "entry 1 admin: expected true or false"),
    ('{"user_id": "mallory", "adnim": true}', "entry 1: unknown key 'adnim'"),
    ('{"user_id": 42}', "entry 1 user_id: expected a string, got 42"),
    ('{"admin": true}', "entry 1: missing required key 'user_id'"),
    ('{"user_id": " "}', "entry 1 user_id: must not be empty"),
    ('"mallory"', "entry 1: expected a table"),
]


@pytest.mark.parametrize(("entry", "says"), ENV_BAD)
def test_environment_tokens_are_checked_like_the_file(
    entry: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.ws import load_tokens

    good = '"root-token-0123456789": {"user_id": "root", "admin": true}'
    monkeypatch.setenv("STARPOD_GATEWAY_TOKENS", f'{{"{SECRET}": {entry}, {good}}}')
    with pytest.raises(ConfigError) as err:
        load_tokens(GatewayConfig())
    assert str(err.value).startswith(f"$STARPOD_GATEWAY_TOKENS {says}"), str(err.value)
    assert SECRET not in str(err.value)


def test_environment_tokens_that_are_right_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.ws import load_tokens

    monkeypatch.setenv(
        "STARPOD_GATEWAY_TOKENS",
        f'{{"{SECRET}": {{"user_id": "alice", "admin": false}}, '
        '"root-token-0123456789": {"user_id": "root", "admin": true}}',
    )
    file_token = GatewayConfig(tokens={"file-token-0123456789": TokenConfig("bob")})
    tokens = load_tokens(file_token)
    assert tokens[SECRET] == Principal("alice") and not tokens[SECRET].admin
    assert tokens["root-token-0123456789"] == Principal("root", admin=True)
    assert tokens["file-token-0123456789"] == Principal("bob")
    for short in ("a", "0123456789abcde"):  # 15 characters: one short
        monkeypatch.setenv("STARPOD_GATEWAY_TOKENS", f'{{"{short}": {{"user_id": "alice"}}}}')
        with pytest.raises(ConfigError, match="entry 1: must be a token of at least 16") as err:
            load_tokens(GatewayConfig())
        assert f"got {len(short)})" in str(err.value)
    assert "0123456789abcde" not in str(err.value)  # a refused token is never shown


@pytest.mark.timeout(60)
@pytest.mark.slow
async def test_serve_refuses_a_string_admin_in_the_environment(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text("")
    env = {"STARPOD_GATEWAY_TOKENS": f'{{"{SECRET}": {{"user_id": "mallory", "admin": "false"}}}}'}
    for command in (["serve", "--port", "0", "--http-port", "0"], ["mcp", "--http", "127.0.0.1:0"]):
        code, out, err = await run_cli(tmp_path, *command, env=env)
        assert code == 2, (command, code, out, err)
        assert err.count("\n") == 1, err
        assert "$STARPOD_GATEWAY_TOKENS entry 1 admin: expected true or false" in err, err
        assert SECRET not in err + out


def test_the_readme_lists_the_bounds_of_every_key() -> None:
    table = documentation().split("### Bounds of every setting", 1)[1].split("\n## ", 1)[0]
    renamed = {"default_timezone": "timezone"}
    for cls in SECTIONS:
        for key in rules(cls):
            assert f"`{renamed.get(key, key)}`" in table, f"README bounds table lacks {key}"
