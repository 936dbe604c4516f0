"""A userspace TCP proxy per node<->PostgreSQL link, in the hub namespace, for delay and loss
where the kernel has no ``tc netem``. Each chunk read is forwarded ``delay`` later, in order;
with probability ``loss`` a chunk is held a further retransmission timeout (200-600 ms), which
is what a lost segment costs a TCP stream (the bytes themselves cannot be lost)."""

from __future__ import annotations

import asyncio
import contextlib
import random


class Proxy:
    def __init__(self, listen: str, upstream: tuple[str, int], seed: int) -> None:
        self.listen = listen
        self.upstream = upstream
        self.delay = 0.0
        self.loss = 0.0
        self.port = 0
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                writer.close()
                return
            try:
                await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
            finally:
                for w in (writer, up_writer):
                    w.close()
        except (OSError, asyncio.IncompleteReadError):
            pass  # a side went away: the other is closed with it, as a cut link would be
        finally:
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def feed() -> None:
            try:
                while data := await reader.read(65536):
                    queue.put_nowait((loop.time(), data))
            finally:
                queue.put_nowait((loop.time(), b""))

        feeder = asyncio.ensure_future(feed())
        try:
            while True:
                at, data = await queue.get()
                hold = at + self.delay - loop.time()
                if self.loss and self._random.random() < self.loss:
                    hold += self._random.uniform(0.2, 0.6)
                if hold > 0:
                    await asyncio.sleep(hold)
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await feeder
