"""The Telegram bot (python-telegram-bot v22): chat commands that schedule prompts, and the
outbox channel that sends results back to the chat a job came from.

The bot polls with its own loop (``Bot.get_updates`` + ``Application.process_update``) rather
than PTB's Updater, whose polling stops for good on a rejected token: a token rejected at
start or later, or Telegram unreachable, costs one log line per attempt and a growing wait
(up to ``retry_max_secs``), never the gateway. Sending (the outbox) does not depend on polling.

Telegram allows one ``getUpdates`` consumer per token, so among gateways sharing a store only
the holder of the lease ``telegram:<bot id>`` polls (:mod:`starpod_cron.leadership`), and the
update offset travels with the lease. Updates are handled one at a time and the offset saved
after each: a leader killed while handling an update leaves that one update to be handled
again by the next leader; no other update is repeated or skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from typing import Any

# Opt in to python-telegram-bot's timedelta time periods (its documented future default), so
# RetryAfter does not warn on every rate limit; deliver() accepts both forms.
os.environ.setdefault("PTB_TIMEDELTA", "1")

import httpx
from aiolimiter import AsyncLimiter
from telegram import InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from starpod_cron import (
    Delivery,
    InvalidInput,
    JobAlreadyRunning,
    StarpodCronError,
    StoreUnavailable,
)
from starpod_cron.access import Principal
from starpod_cron.chat import AgentChat
from starpod_cron.config import TelegramConfig
from starpod_cron.leadership import LeaderElection, LeaderTerm
from starpod_cron.logs import redact
from starpod_cron.operations import JobOperations
from starpod_cron.phrases import lines
from starpod_cron.tasks import TaskSet
from starpod_cron.tools import call_tool

from .outbox import DeliveryError, Progress
from .telegram_buttons import SNOOZE_FOR, Buttons, result_buttons, resume_buttons
from .telegram_text import HELP, describe, parse_schedule, split_message

log = logging.getLogger("gateway.telegram")

FIRST_RETRY_SECS = 1.0
UPDATES = ["message", "callback_query"]
"""The updates the bot asks for: messages (commands, chat) and presses of its buttons."""


def origin_of(update: Update) -> dict[str, Any]:
    """Where a job made from this message comes from: its results go back to this chat (and
    forum topic)."""
    message = update.effective_message
    chat = update.effective_chat
    assert message is not None and chat is not None
    origin: dict[str, Any] = {
        "telegram_chat_id": chat.id,
        "telegram_user_id": update.effective_user.id if update.effective_user else None,
    }
    if message.is_topic_message and message.message_thread_id is not None:
        origin["thread_id"] = message.message_thread_id
    return origin


def lease_name(token: str) -> str:
    """The leadership lease of a bot: ``telegram:<bot id>`` (the public part of the token,
    before the colon; the secret part never leaves this process)."""
    return f"telegram:{token.partition(':')[0]}"


def _one_line(exc: BaseException) -> str:
    """A Telegram or network error as one redacted line (never the URL with the token)."""
    return redact(f"{type(exc).__name__}: {exc}".splitlines()[0])


def delivery_error(exc: TelegramError | httpx.HTTPError) -> DeliveryError:
    """What a Bot API error means for a delivery (:class:`~gateway.outbox.DeliveryError`):

    - 429 (``RetryAfter``): this chat waits ``retry_after``, not a failed attempt;
    - 401 / 404 (``InvalidToken``: the token rejected, or no such API), network errors,
      timeouts and 5xx (``NetworkError``): the bot as a whole refuses, every chat waits;
    - 400 (``BadRequest``: chat not found, message refused), 403 (``Forbidden``: the bot was
      blocked or kicked) and a chat that moved (``ChatMigrated``): this message is dead;
    - anything else (409 ``Conflict``, an answer that is not JSON): a failed attempt.
    """
    line = _one_line(exc)
    if isinstance(exc, RetryAfter):
        return DeliveryError(f"Telegram rate limit: {line}", retry_after=_seconds(exc.retry_after))
    if isinstance(exc, BadRequest | Forbidden | ChatMigrated):  # BadRequest is a NetworkError
        return DeliveryError(f"Telegram refused: {line}", permanent=True)
    if isinstance(exc, InvalidToken | NetworkError | httpx.HTTPError):
        return DeliveryError(f"Telegram refuses the bot: {line}", refusing=True)
    return DeliveryError(f"Telegram failed: {line}")


class TelegramBot:
    """Long-polls the Bot API; only ``allowed_user_ids`` may use it."""

    def __init__(
        self,
        config: TelegramConfig,
        token: str,
        ops: JobOperations,
        election: LeaderElection | None = None,
        chat: AgentChat | None = None,
    ) -> None:
        self.config = config
        self.ops = ops
        self.chat = chat
        self.election = election
        self.allowed = set(config.allowed_user_ids)
        self.refused: set[int] = set()
        self.polling = False
        """True while getUpdates answers (for health checks)."""
        self.name = lease_name(token)
        """The bot as a destination (``telegram:<bot id>``, no secret; see Channel)."""
        self.app = (
            Application.builder()
            .token(token)
            .base_url(config.base_url)
            .base_file_url(config.base_url.replace("/bot", "/file/bot"))
            .updater(None)
            .build()
        )
        self._tasks = TaskSet("gateway:telegram")
        self.buttons = Buttons(ops, self._tasks)
        # capacity 1: evenly spaced, no burst (a bucket of 30 would allow ~60 in a second)
        self._overall = AsyncLimiter(1, 1 / config.messages_per_sec)
        self._per_chat: dict[int, AsyncLimiter] = {}
        commands = {
            "every": self._schedule,
            "cron": self._schedule,
            "at": self._schedule,
            "in": self._schedule,
            "when": self._schedule,
            "jobs": self._jobs,
            "runs": self._runs,
            "pause": self._pause,
            "resume": self._resume,
            "remove": self._remove,
            "snooze": self._snooze,
            "run": self._run,
            "tz": self._tz,
            "help": self._help,
            "start": self._help,
        }
        for name, handler in commands.items():
            self.app.add_handler(CommandHandler(name, self._guard(handler)))
        self.app.add_handler(CallbackQueryHandler(self._press))
        talk = self._talk if chat is not None else self._help
        self.app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._guard(talk)))
        self.app.add_handler(MessageHandler(filters.ALL, self._guard(self._help)))
        if not self.allowed:
            log.warning("[telegram] allowed_user_ids is empty: every Telegram user is refused")

    async def start(self) -> None:
        """Start in the background; never fails (problems are logged and retried). With an
        ``election``, this node polls only while it leads (one poller per bot token among
        the nodes sharing the store), resuming from the update offset the last leader saved;
        every node can send (the outbox)."""
        self._tasks.spawn(self._serve(), "poll")

    async def stop(self) -> None:
        await self._tasks.stop(grace=2)
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    # ------------------------------------------------------------------ polling
    async def _retry(self, what: str, exc: BaseException, delay: float) -> float:
        log.error("Telegram %s failed: %s; retrying in %.0fs", what, _one_line(exc), delay)
        self.polling = False
        await asyncio.sleep(delay)
        return min(delay * 2, self.config.retry_max_secs)

    async def _serve(self) -> None:
        delay = FIRST_RETRY_SECS
        while True:
            try:
                await self.app.initialize()
                break
            except (TelegramError, httpx.HTTPError) as exc:
                delay = await self._retry("start (getMe)", exc, delay)
        await self.app.start()
        if self.election is None:
            await self._poll(None)
        else:
            await self.election.run(self._poll)

    async def _poll(self, term: LeaderTerm | None) -> None:
        """Long-poll and handle updates one at a time, saving the offset after each (with a
        term: in the store, so the next leader neither repeats nor skips one)."""
        log.info("Telegram bot @%s polling for commands", self.app.bot.username)
        offset = int(term.state) if term is not None and term.state else None
        delay = FIRST_RETRY_SECS
        try:
            while True:
                if term is not None:
                    term.check()
                try:
                    updates = await self.app.bot.get_updates(
                        offset=offset,
                        timeout=int(self.config.poll_timeout_secs),
                        allowed_updates=UPDATES,
                    )
                except RetryAfter as exc:
                    delay = await self._retry("polling", exc, max(delay, _seconds(exc.retry_after)))
                    continue
                except (TelegramError, httpx.HTTPError) as exc:
                    delay = await self._retry("polling", exc, delay)
                    continue
                if not self.polling:
                    log.info("Telegram polling works again")
                self.polling = True
                delay = FIRST_RETRY_SECS
                for update in updates:
                    if term is not None:
                        term.check()  # paused past the lease: the next leader handles it
                    await self._handle(update)
                    offset = update.update_id + 1
                    if term is not None:
                        await term.save(str(offset))
        finally:
            self.polling = False

    async def _handle(self, update: Update) -> None:
        try:
            await self.app.process_update(update)
        except Exception:  # a handler bug must not stop polling or repeat the update
            log.exception("Telegram update %d failed", update.update_id)

    # ------------------------------------------------------------------ outbox channel
    async def deliver(self, delivery: Delivery, progress: Progress) -> None:
        """Send a result or alert in pieces, at Telegram's rates (a 429 that asks for longer
        is a wait, not an attempt), its buttons under the last piece."""
        _, chat, *thread = delivery.destination.split(":")
        pieces = split_message(str(delivery.payload.get("text", "")))
        try:
            buttons = await self._buttons_for(delivery)
            for index in range(delivery.progress, len(pieces)):
                last = index + 1 == len(pieces)
                await self.send(
                    int(chat),
                    pieces[index],
                    int(thread[0]) if thread else None,
                    buttons if last else None,
                )
                if not last:
                    await progress(index + 1)
        except (TelegramError, httpx.HTTPError) as exc:
            raise delivery_error(exc) from exc

    async def send(
        self,
        chat_id: int,
        text: str,
        thread_id: int | None = None,
        buttons: InlineKeyboardMarkup | None = None,
    ) -> None:
        """One message, after waiting for its turn: at most ``chat_messages_per_sec`` to a
        chat and ``messages_per_sec`` in all (Telegram's limits)."""
        chat = self._per_chat.get(chat_id)
        if chat is None:
            if len(self._per_chat) >= 10_000:  # forget the quietest chats, not the limits
                self._per_chat = {k: v for k, v in self._per_chat.items() if not v.has_capacity()}
            chat = self._per_chat[chat_id] = AsyncLimiter(1, 1 / self.config.chat_messages_per_sec)
        async with chat, self._overall:
            await self.app.bot.send_message(
                chat_id=chat_id, text=text, message_thread_id=thread_id, reply_markup=buttons
            )

    async def _buttons_for(self, delivery: Delivery) -> InlineKeyboardMarkup | None:
        """A result's buttons, or Resume under the alert of a job that is paused now; none
        for a job that is gone, nor for an agent-level one (no Telegram user owns it, so no
        one could press them)."""
        try:
            job = await self.ops.store.get_job(delivery.job_id)
        except StoreUnavailable as exc:  # asked again shortly, no attempt spent
            raise DeliveryError(f"store unavailable: {exc}", retry_after=1) from exc
        if job is None or job.user_id is None:
            return None
        if delivery.payload.get("event") == "notice":
            return None if job.enabled else resume_buttons(job.id)
        return result_buttons(job.id)

    async def check(self) -> None:
        """Ask Telegram who the bot is (getMe): DeliveryError if it refuses."""
        try:
            await self.app.bot.get_me()
        except (TelegramError, httpx.HTTPError) as exc:
            raise delivery_error(exc) from exc

    # ----------------------------------------------------------------- chat commands
    def _guard(self, handler: Any) -> Any:
        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            message = update.effective_message
            if user is None or message is None:
                return
            if user.id not in self.allowed:
                if user.id not in self.refused:  # one polite refusal; nothing is stored
                    self.refused.add(user.id)
                    await self._say(update, "Sorry, this bot only works for its owner.")
                return
            try:
                await handler(update, Principal(f"tg:{user.id}"))
            except StarpodCronError as exc:  # bad input, unknown job, a limit, ...
                await self._say(update, f"Error: {exc}")
            except Exception:
                log.exception("Telegram command from user %d failed", user.id)
                await self._say(update, "Error: something went wrong on our side (logged).")

        return guarded

    async def _press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button pressed: only allowed users, each as themselves (see telegram_buttons)."""
        query, user = update.callback_query, update.effective_user
        if query is None or user is None:
            return
        if user.id not in self.allowed:
            await query.answer("Sorry, this bot only works for its owner.", show_alert=True)
            return
        try:
            await self.buttons.press(query, Principal(f"tg:{user.id}"))
        except Exception:
            log.exception("Telegram button from user %d failed", user.id)
            await query.answer("Error: something went wrong on our side (logged).")

    async def _say(self, update: Update, text: str) -> None:
        chat = update.effective_chat
        message = update.effective_message
        if chat is None:
            return
        thread = message.message_thread_id if message and message.is_topic_message else None
        for piece in split_message(text):
            await self.send(chat.id, piece, thread)

    @staticmethod
    def _command(update: Update) -> tuple[str, str]:
        text = (update.effective_message.text or "") if update.effective_message else ""
        head, _, rest = text.partition(" ")
        return head.lstrip("/").split("@")[0].lower(), rest

    async def _tool(
        self, who: Principal, name: str, arguments: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        return await call_tool(self.ops, name, arguments, user=who, **kw)

    async def _schedule(self, update: Update, who: Principal) -> None:
        command, rest = self._command(update)
        tz = await self.ops.default_zone(who)
        fields = parse_schedule(command, rest, tz, self.ops.now())
        answer = await self._tool(who, "cron_add", fields, origin=origin_of(update))
        understood = answer.get("interpretation")
        said = [f"Scheduled {answer['job']['name']}.", *lines(understood)] if understood else []
        await self._say(update, "\n".join(said) or f"Scheduled: {describe(answer['job'])}")

    async def _jobs(self, update: Update, who: Principal) -> None:
        jobs = (await self._tool(who, "cron_list", {}))["jobs"]
        await self._say(
            update,
            "\n".join(describe(j) for j in jobs) or "No jobs yet. Try /every 30m check the build",
        )

    def _name(self, update: Update) -> dict[str, Any]:
        _, rest = self._command(update)
        if not rest.strip():
            raise InvalidInput("name the job, e.g. /runs standup (see /jobs)")
        return {"name": rest.strip()}

    async def _runs(self, update: Update, who: Principal) -> None:
        runs = (await self._tool(who, "cron_runs", {**self._name(update), "limit": 5}))["runs"]
        lines = [
            f"{r['started_at'][:16].replace('T', ' ')} UTC {r['status']}: "
            f"{(r['result'] or r['error'] or '')[:200]}"
            for r in runs
        ]
        await self._say(update, "\n".join(lines) or "No runs yet.")

    async def _pause(self, update: Update, who: Principal) -> None:
        job = (await self._tool(who, "cron_pause", self._name(update)))["job"]
        await self._say(update, f"Paused {job['name']}.")

    async def _resume(self, update: Update, who: Principal) -> None:
        job = (await self._tool(who, "cron_resume", self._name(update)))["job"]
        await self._say(update, f"Resumed: {describe(job)}")

    async def _snooze(self, update: Update, who: Principal) -> None:
        """``/snooze standup`` (1 h) or ``/snooze standup 30m``: the button's operation."""
        words = self._name(update)["name"].split()
        name, duration = (words, SNOOZE_FOR) if len(words) == 1 else (words[:-1], words[-1])
        arguments = {"name": " ".join(name), "for": duration}
        job = (await self._tool(who, "cron_snooze", arguments))["job"]
        await self._say(update, f"Snoozed: {describe(job)}, then as scheduled.")

    async def _remove(self, update: Update, who: Principal) -> None:
        job = (await self._tool(who, "cron_remove", self._name(update)))["job"]
        await self._say(update, f"Removed {job['name']}.")

    async def _run(self, update: Update, who: Principal) -> None:
        job = (await self._tool(who, "cron_get", self._name(update)))["job"]
        await self._say(update, f"Running {job['name']} now; the result will follow.")

        async def run() -> None:
            try:
                await self._tool(who, "cron_run", {"name": job["id"]})
            except JobAlreadyRunning:
                await self._say(update, f"{job['name']} is already running.")

        self._tasks.spawn(run(), f"run:{job['name']}")

    async def _tz(self, update: Update, who: Principal) -> None:
        _, rest = self._command(update)
        if not rest.strip():
            current = await self.ops.default_zone(who)
            await self._say(update, f"Your time zone is {current}. Change it: /tz Europe/Rome")
            return
        zone_name = await self.ops.set_default_zone(who, rest.strip())
        await self._say(update, f"Your time zone is now {zone_name}.")

    async def _talk(self, update: Update, who: Principal) -> None:
        """A message that is not a command goes to the agent, which may schedule jobs for
        this user; their results come back to this chat."""
        assert self.chat is not None and update.effective_message is not None
        text = update.effective_message.text or ""
        await self._say(update, await self.chat.reply(who, text, origin=origin_of(update)))

    async def _help(self, update: Update, who: Principal) -> None:
        await self._say(update, HELP)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
