"""The services' Prometheus counters, followed across restarts.

A counter lives in a process: a SIGKILLed service starts again from zero. The sampler
scrapes every service often and, when a process's start time changes, carries the old
process's last values over, so totals only grow. What a killed process counted after
its last scrape is lost: the totals are lower bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Key = tuple[str, str, Labels]  # service, sample name, labels

START_TIME = "process_start_time_seconds"


@dataclass
class _Process:
    started: float | None = None
    last: dict[tuple[str, Labels], float] = field(default_factory=dict)


class MetricsSampler:
    def __init__(self, services: Mapping[str, str], interval: float = 0.5) -> None:
        self.services = dict(services)  # name -> base URL
        self.interval = interval
        self._carried: dict[Key, float] = {}
        self._processes = {name: _Process() for name in services}
        self._client = httpx.AsyncClient(timeout=1.0)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MetricsSampler:
        await self.scrape()
        self._task = asyncio.create_task(self._run(), name="metrics-sampler")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.scrape()
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.scrape()

    async def scrape(self) -> None:
        await asyncio.gather(*(self._scrape(name, base) for name, base in self.services.items()))

    async def _scrape(self, name: str, base: str) -> None:
        try:
            response = await self._client.get(f"{base}/metrics")
        except httpx.HTTPError:
            return  # down (the fault), or busy: the next scrape catches up
        if response.status_code != 200:
            return
        values: dict[tuple[str, Labels], float] = {}
        started: float | None = None
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == START_TIME:
                    started = sample.value
                elif family.type == "counter" and sample.name.endswith("_total"):
                    values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        process = self._processes[name]
        if started is not None and process.started is not None and started != process.started:
            for (sample_name, labels), value in process.last.items():
                key = (name, sample_name, labels)
                self._carried[key] = self._carried.get(key, 0.0) + value
            process.last = {}
        process.started = started if started is not None else process.started
        process.last.update(values)

    def totals(self) -> dict[Key, float]:
        """Every counter, summed over the processes each service has had."""
        result = dict(self._carried)
        for name, process in self._processes.items():
            for (sample_name, labels), value in process.last.items():
                key = (name, sample_name, labels)
                result[key] = result.get(key, 0.0) + value
        return result


def total(snapshot: Mapping[Key, float], sample: str, **labels: str) -> float:
    """The sum of `sample` over the series whose labels include `labels`."""
    return sum(
        value
        for (_, name, series), value in snapshot.items()
        if name == sample and all((k, v) in series for k, v in labels.items())
    )


def difference(after: Mapping[Key, float], before: Mapping[Key, float]) -> dict[Key, float]:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}
