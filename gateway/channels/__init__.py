"""The outbox's channels other than Telegram (``gateway/telegram.py``): one module per kind of
destination, each a :class:`gateway.outbox.Channel`; :mod:`gateway.channels.http` says what an
HTTP answer means for a delivery, once for every HTTP kind."""
