"""The gateway users run: ``starpod-cron serve`` (or ``python -m gateway``).

It composes the library (store, scheduler, executor) with a WebSocket server, an optional
Telegram bot and a durable delivery outbox; it holds no scheduling logic of its own.
"""
