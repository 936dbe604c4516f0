"""A Telegram Bot API stand-in on 127.0.0.1 (getMe, getUpdates, sendMessage, deleteWebhook,
answerCallbackQuery, editMessageReplyMarkup), driven by tests: they queue user messages and
button presses, read what the bot sent (with its inline buttons), and make Telegram refuse
(a revoked token, flood control, a blocked or missing chat, 5xx)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-TOKEN-never-logged"


class BotApi:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, Any]]] = []  # (status, body) for sendMessage
        self.fail_at: dict[int, tuple[int, dict[str, Any]]] = {}  # by sendMessage attempt no.
        self.fail_all_with: int | None = None
        self.token_revoked = False  # every method answers 401, as for a revoked token
        self.flood_until = 0.0  # until this time.monotonic(), sendMessage answers 429 (1 s)
        self.blocked_chats: set[int] = set()  # sendMessage there: 403, the bot was blocked
        self.missing_chats: set[int] = set()  # sendMessage there: 400, chat not found
        self.send_delay = 0.0  # seconds each sendMessage takes
        self.send_attempts = 0
        self.calls: list[str] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._new_update = asyncio.Event()
        self._polls = 0
        self.conflicts = 0  # getUpdates calls ended by a newer one (two pollers at once)
        self.handed_out: Counter[int] = Counter()  # times each update id was handed out
        self.base_url = ""
        self.messages: dict[int, dict[str, Any]] = {}  # message id -> what was sent (as edited)
        self.answers: list[dict[str, Any]] = []  # answerCallbackQuery calls, in order
        self.edits: list[dict[str, Any]] = []  # editMessageReplyMarkup calls, in order
        self._query_ids = itertools.count(1)

    # ----------------------------------------------------------------- test helpers
    def type(
        self, user_id: int, text: str, *, chat_id: int | None = None, thread_id: int | None = None
    ) -> None:
        """A user types ``text`` (a /command) into a chat."""
        command = text.split()[0] if text.startswith("/") else ""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {
                "id": chat_id or user_id,
                "type": "private" if chat_id is None else "supergroup",
            },
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
            "text": text,
        }
        if command:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        self.updates.append({"update_id": next(self._update_ids), "message": message})
        self._new_update.set()

    def press(self, user_id: int, message: dict[str, Any], data: str) -> str:
        """``user_id`` taps the button ``data`` under ``message`` (a record of :attr:`sent`,
        with its buttons as last edited); returns the callback query's id."""
        query_id = str(next(self._query_ids))
        current = self.messages[message["message_id"]]
        shown: dict[str, Any] = {
            "message_id": current["message_id"],
            "date": int(time.time()),
            "chat": {"id": current["chat_id"], "type": "supergroup"},
            "text": current["text"],
        }
        if current["reply_markup"] is not None:
            shown["reply_markup"] = current["reply_markup"]
        self.updates.append(
            {
                "update_id": next(self._update_ids),
                "callback_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                    "chat_instance": "1",
                    "message": shown,
                    "data": data,
                },
            }
        )
        self._new_update.set()
        return query_id

    def answer_to(self, query_id: str) -> dict[str, Any] | None:
        return next((a for a in self.answers if str(a["callback_query_id"]) == query_id), None)

    def texts(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.sent if m["chat_id"] == chat_id]

    # ---------------------------------------------------------------- the Bot API
    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append(method)
        if self.token_revoked or request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if method == "getMe":
            return _ok(
                {
                    "id": 1,
                    "is_bot": True,
                    "first_name": "Starpod",
                    "username": "starpod_bot",
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                }
            )
        if method in ("deleteWebhook", "setMyCommands"):
            return _ok(True)
        if method == "answerCallbackQuery":
            self.answers.append(params)
            return _ok(True)
        if method == "editMessageReplyMarkup":
            message = self.messages.get(int(params["message_id"]))
            if message is None:
                return _error(400, "Bad Request: message to edit not found")
            markup = params.get("reply_markup")
            if markup == message["reply_markup"]:
                return _error(400, "Bad Request: message is not modified")
            message["reply_markup"] = markup
            self.edits.append(params)
            return _ok(True)
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "sendMessage":
            if self.send_delay:
                await asyncio.sleep(self.send_delay)
            return self._send_message(params)
        return web.json_response(
            {"ok": False, "error_code": 404, "description": f"Not Found: {method}"}, status=404
        )

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        """As Telegram does: an offset confirms (forgets) the updates before it, and a new
        getUpdates ends the one still waiting with 409 Conflict (one consumer per token)."""
        offset = int(params.get("offset") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, 2)
        self._polls += 1
        mine = self._polls
        self._new_update.set()  # wakes the previous poll, which now answers 409
        await asyncio.sleep(0)
        while True:
            if mine != self._polls:
                self.conflicts += 1
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 409,
                        "description": "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    },
                    status=409,
                )
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                for update in pending:
                    self.handed_out[update["update_id"]] += 1
                return _ok(pending)
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
            except TimeoutError:
                continue

    def _send_message(self, params: dict[str, Any]) -> web.Response:
        self.send_attempts += 1
        chat_id = int(params["chat_id"])
        if time.monotonic() < self.flood_until:  # flood control: "retry after 1", again and again
            return _error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        if chat_id in self.blocked_chats:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing_chats:
            return _error(400, "Bad Request: chat not found")
        planned = self.fail_at.pop(self.send_attempts, None)
        if planned or self.failures or self.fail_all_with is not None:
            status, body = planned or (
                self.failures.pop(0) if self.failures else (self.fail_all_with or 502, {})
            )
            return web.json_response(
                {
                    "ok": False,
                    "error_code": status,
                    "description": body.get("description", "Bad Gateway"),
                    **({"parameters": body["parameters"]} if "parameters" in body else {}),
                },
                status=status,
            )
        thread = params.get("message_thread_id")
        message_id = next(self._message_ids)
        record = {
            "chat_id": chat_id,
            "text": params["text"],
            "thread_id": None if thread in (None, "") else int(thread),
            "parse_mode": params.get("parse_mode"),
            "message_id": message_id,
            "reply_markup": params.get("reply_markup"),
            "at": time.monotonic(),
        }
        self.sent.append(record)
        self.messages[message_id] = record
        return _ok(
            {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": params["text"],
            }
        )


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    out: dict[str, Any] = {}
    for key, value in form.items():
        text = str(value)
        try:
            out[key] = json.loads(text) if key != "text" else text
        except ValueError:
            out[key] = text
    return out


def _error(status: int, description: str, parameters: Any = None) -> web.Response:
    body = {"ok": False, "error_code": status, "description": description}
    if parameters is not None:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


@asynccontextmanager
async def running_botapi() -> AsyncIterator[BotApi]:
    api = BotApi()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", api.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.2, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    api.base_url = f"http://{host}:{port}/bot"
    try:
        yield api
    finally:
        await runner.cleanup()
