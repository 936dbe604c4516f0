"""Named destinations: the ``[destinations.NAME]`` tables of ``agent.toml``, what a job's
``deliver_to`` / ``alerts_to`` entries mean, and who may use them.

::

    [destinations.ops-hook]
    kind = "webhook"                       # webhook | slack | discord | email | telegram
    url = "https://example.org/hooks/cron"
    secret_env = "OPS_HOOK_SECRET"         # a whsec_ secret (Standard Webhooks)
    users = ["u1"]                         # non-admins allowed to deliver here
    events = ["run.finished", "job.notice", "run.started"]

A job entry is ``NAME`` (a table above), ``telegram:CHAT_ID``, ``telegram:CHAT_ID:THREAD_ID``
or ``email:ADDRESS`` (the ``email`` destination named ``email``, or the only one). Each becomes
an outbox destination: ``dest:NAME`` (``dest:NAME:ADDRESS`` for email), or ``tg:CHAT[:THREAD]``
for Telegram. Secrets come only from environment variables (``*_env`` keys), read by the
gateway when it starts its channels, never kept here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from .bounds import HOUR, check_fields, check_kind_keys, whole, within
from .errors import ConfigError, DestinationNotAllowed, InvalidJob, UnknownDestination

S = TypeVar("S")
SectionReader = Callable[[type[S], dict[str, Any], str], S]

KINDS: Final = ("webhook", "slack", "discord", "email", "telegram")
RUN_FINISHED: Final = "run.finished"
RUN_STARTED: Final = "run.started"
JOB_NOTICE: Final = "job.notice"
EVENTS: Final = (RUN_FINISHED, RUN_STARTED, JOB_NOTICE)
DEFAULT_EVENTS: Final = (RUN_FINISHED, JOB_NOTICE)
"""A destination's events unless it lists its own: the result (per the job's ``notify``
policy, failures included) and the notices (paused, ended, stale)."""
DEST_PREFIX: Final = "dest:"
SECURITY: Final = ("starttls", "tls", "none")
TELEGRAM_ID: Final = 2**53
NAME_RULE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ADDRESS: Final = re.compile(r"[^@\s:,<>\"]{1,64}@[^@\s:,<>\"]{1,190}\.[^@\s:,<>\"]{1,63}")
_TELEGRAM: Final = re.compile(r"telegram:(-?\d{1,16})(?::(\d{1,16}))?")
HTTP_KINDS: Final = ("webhook", "slack", "discord")


def _of(*kinds: str, rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """Field metadata: the kinds a key belongs to (and its bounds, see bounds.py)."""
    return {"kinds": kinds, **(rule or {})}


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    """One ``[destinations.NAME]`` table. Keys other than ``kind``, ``users`` and ``events``
    belong to one or more kinds; a key of another kind is an error naming it."""

    kind: str
    users: tuple[str, ...] = ()
    """Non-admin users allowed to point their jobs here (admins always may)."""
    events: tuple[str, ...] = DEFAULT_EVENTS
    url: str = field(default="", metadata=_of("webhook"))
    secret_env: str = field(default="", metadata=_of("webhook"))
    url_env: str = field(default="", metadata=_of("slack", "discord"))
    timeout_secs: float = field(
        default=10, metadata=_of(*HTTP_KINDS, "email", rule=within(0, HOUR, above=True))
    )
    rate_per_sec: float = field(
        default=1.0, metadata=_of("slack", rule=within(0, 10_000, above=True))
    )
    host: str = field(default="", metadata=_of("email"))
    port: int = field(default=587, metadata=_of("email", rule=whole(1, 65535)))
    security: str = field(default="starttls", metadata=_of("email"))
    username: str = field(default="", metadata=_of("email"))
    password_env: str = field(default="", metadata=_of("email"))
    sender: str = field(default="", metadata=_of("email"))
    """``from`` in the table: the sender's address."""
    to: str = field(default="", metadata=_of("email"))
    """The address a job naming this destination (not ``email:ADDRESS``) sends to."""
    chat_id: int | None = field(
        default=None, metadata=_of("telegram", rule=whole(-TELEGRAM_ID, TELEGRAM_ID))
    )
    thread_id: int | None = field(
        default=None, metadata=_of("telegram", rule=whole(1, TELEGRAM_ID))
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.kind not in KINDS:
            raise ConfigError(f"kind: must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for event in self.events:
            if event not in EVENTS:
                raise ConfigError(f"events: {event!r} is not one of {', '.join(EVENTS)}")
        needs = {
            "webhook": ("url", "secret_env"),
            "slack": ("url_env",),
            "discord": ("url_env",),
            "email": ("host", "sender"),
        }.get(self.kind, ())
        for key in needs:
            if not getattr(self, key):
                shown = "from" if key == "sender" else key
                raise ConfigError(f"{shown}: kind = {self.kind!r} needs {shown}")
        if self.kind == "webhook" and not self.url.startswith(("http://", "https://")):
            raise ConfigError("url: must start with http:// or https://")
        if self.kind == "telegram" and self.chat_id is None:
            raise ConfigError('chat_id: kind = "telegram" needs chat_id')
        if self.kind == "email":
            if self.security not in SECURITY:
                raise ConfigError(f"security: must be one of {', '.join(SECURITY)}")
            for key in ("sender", "to"):
                value = getattr(self, key)
                if value and not _ADDRESS.fullmatch(value):
                    shown = "from" if key == "sender" else key
                    raise ConfigError(f"{shown}: {value!r} is not an email address")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one job entry sends: the outbox destination and the events it takes."""

    address: str
    events: frozenset[str]
    name: str | None
    """The ``[destinations.NAME]`` behind it (None: a bare ``telegram:CHAT`` entry)."""

    @property
    def structured(self) -> bool:
        """A ``dest:`` destination gets the JSON payload (Telegram gets text)."""
        return self.address.startswith(DEST_PREFIX)


@dataclass(frozen=True, slots=True)
class Destinations:
    """Every ``[destinations.NAME]`` and ``[cron] alerts_to`` (the failure and pause alerts of
    jobs without an ``alerts_to`` of their own)."""

    named: Mapping[str, DestinationConfig] = field(default_factory=dict)
    alerts_to: tuple[str, ...] = ()

    def target(self, entry: str) -> Target:
        """What ``entry`` (of a job's ``deliver_to``) means; UnknownDestination if nothing."""
        chat = _TELEGRAM.fullmatch(entry)
        if chat is not None:
            thread = chat.group(2)
            topic = int(thread) if thread else None
            return Target(tg_address(int(chat.group(1)), topic), _ALL, None)
        if entry.startswith("email:"):
            name = self.email_name()
            return Target(
                f"{DEST_PREFIX}{name}:{entry[6:]}", frozenset(self.named[name].events), name
            )
        config = self.named.get(entry)
        if config is None:
            known = ", ".join(sorted(self.named)) or "none are declared"
            raise UnknownDestination(
                f"no destination named {entry!r} in agent.toml ([destinations.NAME]; "
                f"known: {known})"
            )
        events = frozenset(config.events)
        if config.kind == "telegram":
            assert config.chat_id is not None  # checked on read
            return Target(tg_address(config.chat_id, config.thread_id), events, entry)
        if config.kind == "email":
            if not config.to:
                raise UnknownDestination(
                    f"destination {entry!r} is email without `to`: deliver to "
                    f"'email:ADDRESS' instead"
                )
            return Target(f"{DEST_PREFIX}{entry}:{config.to}", events, entry)
        return Target(f"{DEST_PREFIX}{entry}", events, entry)

    def targets(self, entries: Iterable[str] | None) -> list[Target]:
        """The targets of ``entries`` (None: a job's list never set) that still exist (a
        destination removed from the config since the job named it is skipped: planning
        never fails a run)."""
        return [self.target(entry) for entry in entries or () if self.exists(entry)]

    def exists(self, entry: str) -> bool:
        """Whether :meth:`target` finds something for ``entry``."""
        if _TELEGRAM.fullmatch(entry):
            return True
        if entry.startswith("email:"):
            mail = [n for n, c in self.named.items() if c.kind == "email"]
            return "email" in mail or len(mail) == 1
        config = self.named.get(entry)
        return config is not None and (config.kind != "email" or bool(config.to))

    def email_name(self) -> str:
        """The destination ``email:ADDRESS`` uses: the email one named ``email``, or the
        only one of kind email."""
        mail = [n for n, c in self.named.items() if c.kind == "email"]
        if "email" in mail:
            return "email"
        if len(mail) == 1:
            return mail[0]
        raise UnknownDestination(
            "email:ADDRESS needs a [destinations.email] of kind 'email' (or exactly one "
            f"destination of kind email; found {len(mail)})"
        )

    def check(
        self, user_id: str | None, admin: bool, entries: Iterable[str], chat: int | None
    ) -> None:
        """Refuse (nothing written) an entry that names nothing, or that the user may not
        use: a non-admin may deliver only to destinations listing them in ``users``, or to
        ``chat``, the Telegram chat they are writing from (never someone else's)."""
        for entry in entries:
            target = self.target(entry)
            if admin:
                continue
            if target.name is not None:
                if user_id is not None and user_id in self.named[target.name].users:
                    continue
                raise DestinationNotAllowed(
                    f"you may not deliver to {entry!r}: an admin has not allowed it for you "
                    f"([destinations.{target.name}] users)"
                )
            match = _TELEGRAM.fullmatch(entry)
            if chat is None or match is None or int(match.group(1)) != chat:
                raise DestinationNotAllowed(
                    f"you may not deliver to {entry!r}: only to the chat you are writing "
                    "from, or a destination an admin allowed for you"
                )


_ALL: Final = frozenset(DEFAULT_EVENTS)


def tg_address(chat_id: int, thread_id: int | None = None) -> str:
    return f"tg:{chat_id}" if thread_id is None else f"tg:{chat_id}:{thread_id}"


def entry_form(entry: str) -> str:
    """A job entry's form, checked where every job is written (``item_check`` of
    ``deliver_to`` / ``alerts_to``): ``NAME``, ``telegram:CHAT[:THREAD]`` or
    ``email:ADDRESS``. Whether NAME exists is the operation's question (it knows the config)."""
    if _TELEGRAM.fullmatch(entry):
        return entry
    if entry.startswith("email:"):
        if not _ADDRESS.fullmatch(entry[6:]):
            raise InvalidJob(f"{entry!r}: email:ADDRESS needs an address like me@example.org")
        return entry
    if entry.startswith("telegram:"):
        raise InvalidJob(f"{entry!r}: write telegram:CHAT_ID or telegram:CHAT_ID:THREAD_ID")
    if not NAME_RULE.fullmatch(entry):
        raise InvalidJob(
            f"{entry!r} is not a destination: give a [destinations.NAME] name, "
            "telegram:CHAT_ID[:THREAD_ID] or email:ADDRESS"
        )
    return entry


def parse_destinations(
    section: Mapping[str, Any],
    alerts_to: object,
    where: str,
    section_of: Callable[[type[DestinationConfig], dict[str, Any], str], DestinationConfig],
) -> Destinations:
    """``[destinations.*]`` and ``[cron] alerts_to`` as read from TOML (``section_of``:
    config's reader of one table into its dataclass, passed in: config imports this)."""
    named: dict[str, DestinationConfig] = {}
    for name, table in section.items():
        here = f"{where} [destinations.{name}]"
        if not NAME_RULE.fullmatch(name):
            raise ConfigError(f"{here}: a name of letters, digits, '-', '_' or '.'")
        if not isinstance(table, dict):
            raise ConfigError(f'{here}: must be a table with kind = "webhook", ...')
        values = dict(table)
        if "sender" in values:
            raise ConfigError(f"{here}: unknown key 'sender' (the sender is `from`)")
        if "from" in values:
            values["sender"] = values.pop("from")
        _check_kind_keys(values, here)
        named[name] = section_of(DestinationConfig, values, here)
    if not isinstance(alerts_to, list) or not all(isinstance(a, str) for a in alerts_to):
        raise ConfigError(f"{where} [cron] alerts_to: must be a list of destinations")
    found = Destinations(named, tuple(alerts_to))
    for entry in alerts_to:
        try:
            found.target(entry_form(entry))
        except (InvalidJob, UnknownDestination) as exc:
            raise ConfigError(f"{where} [cron] alerts_to: {exc}") from None
    return found


def check_declared(found: Destinations, jobs: Iterable[Mapping[str, Any]], where: str) -> None:
    """The ``deliver_to`` / ``alerts_to`` of ``[[jobs]]`` tables name declared destinations."""
    for job in jobs:
        for key in ("deliver_to", "alerts_to"):
            entries = job.get(key, [])
            for entry in entries if isinstance(entries, list) else ():
                if not isinstance(entry, str):
                    continue  # the job's own check names the wrong type
                try:
                    found.target(entry)
                except UnknownDestination as exc:
                    raise ConfigError(
                        f"{where} [[jobs]] {job.get('name', '?')!r} {key}: {exc}"
                    ) from None


def _check_kind_keys(values: Mapping[str, Any], where: str) -> None:
    check_kind_keys(DestinationConfig, values, where, values.get("kind"), {"sender": "from"})


__all__ = [
    "DEFAULT_EVENTS",
    "EVENTS",
    "KINDS",
    "DestinationConfig",
    "Destinations",
    "Target",
    "entry_form",
    "parse_destinations",
]
