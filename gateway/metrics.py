"""Prometheus metrics of one gateway node (``GET /metrics``, ``prometheus-client``): runs by
status, lateness and executor duration histograms (from this node's finished runs), runs in
flight and claims (this node's scheduler), deliveries by status (the store), WebSocket clients,
destinations refusing every message (``starpod_cron_destination_refusing``, by kind and id:
``telegram`` and the bot id, never its token), and the process basics (CPU, memory, file
descriptors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from starpod_cron import CronScheduler, CronStore, DeliveryStatus, RunFinished
from starpod_cron.activity import overdue_after_secs, overdue_jobs
from starpod_cron.timeutil import from_ms
from starpod_cron.views import destination_labels, late_ms

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


class Metrics:
    def __init__(
        self,
        store: CronStore,
        scheduler: CronScheduler,
        ws_clients: Callable[[], int],
        destinations: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self.store = store
        self.destinations = destinations
        self.scheduler = scheduler
        self.ws_clients = ws_clients
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.runs = Counter(
            "starpod_cron_runs", "Runs finished on this node, by status", ["status"], registry=r
        )
        self.lateness = Histogram(
            "starpod_cron_run_lateness_seconds",
            "How long after its scheduled time (plus its jitter) a run started",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "starpod_cron_executor_duration_seconds",
            "How long the executor took per run",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "starpod_cron_runs_in_flight",
            "Runs claimed by this node and not yet recorded",
            registry=r,
        )
        self.claims = Gauge(
            "starpod_cron_claims",
            "Runs this node's scheduler claimed since it started",
            registry=r,
        )
        self.deliveries = Gauge(
            "starpod_cron_deliveries",
            "Deliveries in the store, by status",
            ["status"],
            registry=r,
        )
        self.clients = Gauge(
            "starpod_cron_websocket_clients",
            "WebSocket clients connected to this node",
            registry=r,
        )
        self.refusing = Gauge(
            "starpod_cron_destination_refusing",
            "1 while a destination refuses every message (a rejected bot token, Telegram "
            "unreachable): its deliveries wait, probed on the delivery backoff; 0 when it answers",
            ["kind", "id"],
            registry=r,
        )
        self.overdue = Gauge(
            "starpod_cron_job_overdue_seconds",
            "Seconds past its next fire of each enabled job more than 2 * tick_secs + "
            "misfire_grace_secs late (it looks healthy but does not fire); absent otherwise",
            ["job", "id"],
            registry=r,
        )
        self._unsubscribe = store.on_run_finished(self._finished)

    def _finished(self, events: Sequence[RunFinished]) -> None:
        for event in events:
            run = event.run
            self.runs.labels(run.status.value).inc()
            self.lateness.observe(late_ms(run, event.job) / 1000)
            if run.duration_ms is not None:
                self.duration.observe(run.duration_ms / 1000)

    async def render(self) -> bytes:
        """The metrics in Prometheus' text format, with the store's counts read now."""
        counts = await self.store.count_deliveries()
        for status in DeliveryStatus:
            self.deliveries.labels(status.value).set(counts.get(status, 0))
        self.in_flight.set(len(self.scheduler.active_runs()))
        self.claims.set(self.scheduler.claimed_total)
        self.clients.set(self.ws_clients())
        refusing = {r.name for r in await self.store.refusing_destinations()}
        self.refusing.clear()
        for name in refusing.union(self.destinations()):
            self.refusing.labels(*destination_labels(name)).set(int(name in refusing))
        late_after = overdue_after_secs(self.scheduler.settings, self.store.settings)
        now = from_ms(self.store.clock.now_ms())
        self.overdue.clear()
        for job, late in overdue_jobs(await self.store.list_jobs(), now, late_after):
            self.overdue.labels(job.name, job.id).set(late)
        return generate_latest(self.registry)

    def close(self) -> None:
        self._unsubscribe()
