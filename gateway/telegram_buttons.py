"""Reply to manage: the inline buttons under the bot's messages and what a press does.

Under a result: Run again · Snooze 1 h · Pause · Stop. Under the alert of a job that paused
itself (a ``notice``, :mod:`starpod_cron.store.limits`): Resume. A button's
``callback_data`` is ``<action>:<job id>`` (Stop's confirmation adds the second until which
it counts), at most 64 bytes as Telegram allows.

A press goes through the agent tools (:func:`starpod_cron.tools.call_tool`, as the chat
commands do) as the Telegram user who pressed: a job that is not theirs is JobNotFound there,
so someone else in a group chat changes nothing and is told so in the press's answer.

Once, whatever the taps:

- Pause on a paused job, Resume on a running one: said, nothing written.
- Stop only arms: the button turns into "Tap again to remove", which removes the job if
  tapped within :data:`CONFIRM_SECS` (its deadline is in its ``callback_data``, so whichever
  node polls then judges it the same way); later, it is said to be too late and Stop is back.
- After each action the message's buttons are replaced (``editMessageReplyMarkup``) by a
  first row saying what was done (its ``callback_data`` numbered, so no two edits of a
  message look alike), then the buttons that still make sense. A press carries the buttons
  the message showed when it was pressed: a second press of the same button under the same
  buttons (a double tap, both sent before the edit shows) is answered "Already done." and
  does nothing, for :data:`REPEAT_SECS`; a press under the edited buttons is a new one (a
  deliberate Run again after "Run started" runs again). Run again is refused while the job
  runs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError

from starpod_cron import JobAlreadyRunning, JobNotFound, StarpodCronError
from starpod_cron.access import Principal
from starpod_cron.operations import JobOperations
from starpod_cron.tasks import TaskSet
from starpod_cron.timeutil import zone
from starpod_cron.tools import call_tool

log = logging.getLogger("gateway.telegram")

SNOOZE_FOR = "1h"
CONFIRM_SECS = 30
"""Stop removes the job when "Tap again to remove" is tapped within this many seconds."""
REPEAT_SECS = 60.0
"""How long a press is remembered, to tell a double tap (see above)."""
CALLBACK_LIMIT = 64  # bytes of callback_data Telegram keeps
RUN, SNOOZE, PAUSE, STOP, REMOVE, RESUME, LABEL = "run", "snz", "pse", "stp", "rm", "res", "lbl"
NOT_YOURS = "Only the owner of this job can use its buttons; nothing was changed."


def callback(action: str, job_id: str, arg: int | None = None) -> str:
    data = f"{action}:{job_id}" if arg is None else f"{action}:{job_id}:{arg}"
    if len(data.encode()) > CALLBACK_LIMIT:  # job ids are 32 characters: never the case
        raise ValueError(f"callback_data over {CALLBACK_LIMIT} bytes: {data!r}")
    return data


@dataclass(frozen=True, slots=True)
class Press:
    action: str
    job_id: str
    arg: int | None

    @classmethod
    def parse(cls, data: str | None) -> Press | None:
        parts = (data or "").split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            return None
        if len(parts) == 3 and not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else None)


def _button(text: str, action: str, job_id: str, arg: int | None = None) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=callback(action, job_id, arg))


Status = tuple[str, int]
"""A line saying what was done, and its number (each edit of a message has its own)."""


def result_buttons(
    job_id: str, status: Status | None = None, confirm_until: int | None = None
) -> InlineKeyboardMarkup:
    """Run again · Snooze 1 h · Pause · Stop (or, armed, "Tap again to remove" until
    ``confirm_until``, epoch seconds), under a ``status`` line when given."""
    stop = (
        _button("Stop", STOP, job_id)
        if confirm_until is None
        else _button("Tap again to remove", REMOVE, job_id, confirm_until)
    )
    row = [
        _button("Run again", RUN, job_id),
        _button("Snooze 1 h", SNOOZE, job_id),
        _button("Pause", PAUSE, job_id),
        stop,
    ]
    return InlineKeyboardMarkup([*_status(job_id, status), row])


def resume_buttons(job_id: str, status: Status | None = None) -> InlineKeyboardMarkup:
    """Resume, under a ``status`` line when given (a paused job's alert)."""
    return InlineKeyboardMarkup([*_status(job_id, status), [_button("Resume", RESUME, job_id)]])


def _status(job_id: str, status: Status | None) -> list[list[InlineKeyboardButton]]:
    return [] if status is None else [[_button(status[0], LABEL, job_id, status[1])]]


Key = tuple[int, int, str, str]
"""A press: chat, message, callback_data and the buttons it was pressed under."""
Answer = tuple[str, InlineKeyboardMarkup | None]
"""What a press answers (the toast) and the message's new buttons (None: leave them)."""


class Buttons:
    """Handles presses for :class:`~gateway.telegram.TelegramBot` (one update at a time)."""

    def __init__(self, ops: JobOperations, tasks: TaskSet) -> None:
        self.ops = ops
        self._tasks = tasks
        self._recent: dict[Key, int] = {}  # press -> when (ms)
        self._edits = 0

    def _now_ms(self) -> int:
        return self.ops.store.clock.now_ms()

    async def press(self, query: CallbackQuery, who: Principal) -> None:
        press = Press.parse(query.data)
        if press is None or press.action == LABEL:
            await query.answer(_label(query) if press else "This button no longer works.")
            return
        key = self._key(query)
        if key is not None and self._repeated(key):
            await query.answer("Already done.")
            return
        try:
            text, markup = await self._act(press, who)
        except JobNotFound:
            if await self.ops.store.get_job(press.job_id) is not None:
                await query.answer(NOT_YOURS, show_alert=True)
                return
            text, markup = "This job no longer exists.", InlineKeyboardMarkup([])
        except StarpodCronError as exc:
            await query.answer(f"Error: {exc}"[:200], show_alert=True)
            return
        if key is not None:
            self._recent[key] = self._now_ms()
        if markup is not None:  # first, so the message says it when the answer shows
            await _edit(query, markup)
        await query.answer(text[:200])

    def _key(self, query: CallbackQuery) -> Key | None:
        message = query.message
        if message is None or query.data is None:
            return None
        markup = message.reply_markup if isinstance(message, Message) else None
        shown = json.dumps(markup.to_dict(), sort_keys=True) if markup is not None else ""
        return (message.chat.id, message.message_id, query.data, shown)

    def _status(self, text: str) -> Status:
        self._edits = max(self._edits + 1, self._now_ms())
        return (text, self._edits)

    def _repeated(self, key: Key) -> bool:
        now = self._now_ms()
        window = round(REPEAT_SECS * 1000)
        for old in [k for k, at in self._recent.items() if now - at >= window]:
            del self._recent[old]
        return key in self._recent

    async def _tool(self, who: Principal, tool: str, job_id: str, **more: Any) -> dict[str, Any]:
        return await call_tool(self.ops, tool, {"name": job_id, **more}, user=who)

    async def _act(self, press: Press, who: Principal) -> Answer:
        job_id = press.job_id
        job = (await self._tool(who, "cron_get", job_id))["job"]  # the owner check
        name = job["name"]
        if press.action == PAUSE:
            if not job["enabled"]:
                return f"{name} is already paused.", resume_buttons(job_id, self._status("Paused"))
            await self._tool(who, "cron_pause", job_id)
            return f"Paused {name}.", resume_buttons(job_id, self._status("Paused"))
        if press.action == RESUME:
            if job["enabled"]:
                status = self._status(_next(job, "Running"))
                return f"{name} is not paused.", result_buttons(job_id, status)
            after = (await self._tool(who, "cron_resume", job_id))["job"]
            if not after["enabled"]:  # it has made its max_runs, or its window is over
                return f"{name} stays paused: {after['paused_reason']}", None
            return f"Resumed {name}.", result_buttons(job_id, self._status(_next(after, "Resumed")))
        if press.action == SNOOZE:
            after = await self._tool(who, "cron_snooze", job_id, **{"for": SNOOZE_FOR})
            status = self._status(_next(after["job"], "Snoozed"))
            return f"{name}: {status[0]}, then as scheduled.", result_buttons(job_id, status)
        if press.action == STOP:
            until = self._now_ms() // 1000 + CONFIRM_SECS
            status = self._status(f"Remove {name}? Tap again")
            armed = result_buttons(job_id, status, confirm_until=until)
            return f"Tap again to remove within {CONFIRM_SECS} s.", armed
        if press.action == REMOVE:
            if press.arg is None or self._now_ms() > press.arg * 1000:
                status = self._status("Not removed: too late")
                return "Too late: tap Stop again to remove.", result_buttons(job_id, status)
            await self._tool(who, "cron_remove", job_id)
            return f"Removed {name}.", InlineKeyboardMarkup(
                _status(job_id, self._status(f"Removed {name}"))
            )
        if press.action == RUN:
            if job.get("running"):
                return f"{name} is already running.", None
            self._tasks.spawn(self._run(who, job_id, name), f"button-run:{name}")
            status = self._status(f"Run started {self._clock(job)}")
            return f"Running {name} now; the result will follow.", result_buttons(job_id, status)
        return "This button no longer works.", None

    def _clock(self, job: dict[str, Any]) -> str:
        now = datetime.fromtimestamp(self._now_ms() / 1000, zone(job["timezone"]))
        return now.strftime("%H:%M:%S")

    async def _run(self, who: Principal, job_id: str, name: str) -> None:
        try:
            await self._tool(who, "cron_run", job_id)
        except JobAlreadyRunning:
            log.info("Telegram button: %s was already running", name)


def _next(job: dict[str, Any], what: str) -> str:
    """``Snoozed: next Thu 11:00 CET`` (in the job's zone)."""
    nxt = job.get("next_run")
    if not nxt:
        return f"{what}: no next run"
    when = datetime.fromisoformat(nxt).astimezone(zone(job["timezone"]))
    return f"{what}: next {when.strftime('%a %H:%M %Z')}"


def _label(query: CallbackQuery) -> str:
    """The status line pressed: its own text, again."""
    message = query.message
    markup = message.reply_markup if isinstance(message, Message) else None
    for row in markup.inline_keyboard if markup else ():
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return "Done."


async def _edit(query: CallbackQuery, markup: InlineKeyboardMarkup) -> None:
    try:
        await query.edit_message_reply_markup(reply_markup=markup)
    except BadRequest as exc:  # "message is not modified", or too old to edit
        log.info("Telegram button: the message was not edited: %s", str(exc).splitlines()[0])
    except TelegramError as exc:
        log.warning("Telegram button: could not edit the message: %s", type(exc).__name__)
