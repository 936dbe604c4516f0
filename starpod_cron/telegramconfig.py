"""``[telegram]`` of ``agent.toml``: the chat bot's settings (read by config.py, used by
gateway/telegram.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .bounds import DAY, check_fields, each, identity, within
from .errors import ConfigError

TELEGRAM_ID = 2**53  # Telegram user and chat ids fit in 52 bits and a sign


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """``[telegram]``: the chat bot (started when a token is found)."""

    # the variable holding the bot token
    token_env: str = field(default="TELEGRAM_BOT_TOKEN", metadata=identity())
    token: str = ""  # prefer token_env: a token in a file is easy to leak
    # who may talk to the bot (empty: nobody)
    allowed_user_ids: tuple[int, ...] = field(
        default=(), metadata=each(1, TELEGRAM_ID, integer=True, min_items=0, max_items=10_000)
    )
    # chats told about every run of agent-level jobs
    notify_chat_ids: tuple[int, ...] = field(
        default=(),
        metadata=each(-TELEGRAM_ID, TELEGRAM_ID, integer=True, min_items=0, max_items=1000),
    )
    # the Bot API
    base_url: str = "https://api.telegram.org/bot"
    # long-polling wait of one getUpdates
    poll_timeout_secs: float = field(default=10, metadata=within(0, 300, above=True))
    # longest wait between attempts while Telegram refuses us
    retry_max_secs: float = field(default=300, metadata=within(0, DAY, above=True))
    # one node polls; another takes over this long after it dies
    leader_lease_secs: float = field(default=6, metadata=within(1, 300))
    # Telegram's own limits: about one message a second per chat, 30 a second in all
    chat_messages_per_sec: float = field(default=1, metadata=within(0, 1000, above=True))
    # ... and over all chats
    messages_per_sec: float = field(default=30, metadata=within(0, 10_000, above=True))

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url: must start with http:// or https://")
