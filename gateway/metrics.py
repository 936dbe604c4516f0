"""Prometheus metrics of one gateway node (``GET /metrics``, ``prometheus-client``): runs by
status, lateness and executor duration histograms (from this node's finished runs), runs in
flight and claims (this node's scheduler), deliveries by status (the store), WebSocket clients,
destinations refusing every message (``starpod_cron_destination_refusing``, by kind and id:
``telegram`` and the bot id, never its token), per job from the store (silent and undelivered
runs, failures in a row, runs left: read at each scrape, so every node shows the same totals),
and the process basics (CPU, memory, file descriptors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from starpod_cron import (
    CronJob,
    CronScheduler,
    CronStore,
    DeliveryStatus,
    RunFinished,
    RunStatus,
)
from starpod_cron.activity import overdue_after_secs, overdue_jobs
from starpod_cron.timeutil import from_ms
from starpod_cron.views import destination_labels, late_ms, remaining_runs

from .spendmetrics import SpendCounts

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


class JobCounts:
    """Per-job series from the jobs read at the scrape (``jobs``): silent runs and runs not
    delivered by their ``notify`` policy (counters: the store's totals, across every node),
    failures in a row and runs left under ``max_runs`` (gauges). Only jobs with something to
    count appear, labelled by name and id as ``starpod_cron_job_overdue_seconds`` is."""

    def __init__(self) -> None:
        self.jobs: Sequence[CronJob] = ()

    def collect(self) -> Iterator[Metric]:
        labels = ["job", "id"]
        silent = CounterMetricFamily(
            "starpod_cron_job_silent_runs",
            "Runs of each job that answered the silent token (recorded, delivered nowhere)",
            labels=labels,
        )
        suppressed = CounterMetricFamily(
            "starpod_cron_job_suppressed_runs",
            "Runs of each job its notify policy did not deliver (never, on_failure, on_change)",
            labels=labels,
        )
        failures = GaugeMetricFamily(
            "starpod_cron_job_consecutive_failures",
            "Failed or timed-out runs of each job in a row (after retries)",
            labels=labels,
        )
        left = GaugeMetricFamily(
            "starpod_cron_job_remaining_runs",
            "Runs each job with max_runs has left (max_runs - finished runs)",
            labels=labels,
        )
        for job in self.jobs:
            ids = [job.name, job.id]
            if job.silent_runs:
                silent.add_metric(ids, job.silent_runs)
            if job.suppressed_runs:
                suppressed.add_metric(ids, job.suppressed_runs)
            if job.consecutive_failures:
                failures.add_metric(ids, job.consecutive_failures)
            if (remaining := remaining_runs(job)) is not None:
                left.add_metric(ids, remaining)
        yield from (silent, suppressed, failures, left)


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
        for status in RunStatus:  # every status shows, at 0 until one ends so (held too)
            if status.is_final:
                self.runs.labels(status.value)
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
        self.job_counts = JobCounts()
        r.register(self.job_counts)
        self.spend = SpendCounts()
        r.register(self.spend)
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
        jobs = self.job_counts.jobs = self.spend.jobs = await self.store.list_jobs()
        self.spend.rows = await self.store.usage(scope="job", period="all", limit=10**6)
        for job, late in overdue_jobs(jobs, now, late_after):
            self.overdue.labels(job.name, job.id).set(late)
        return generate_latest(self.registry)

    def close(self) -> None:
        self._unsubscribe()
