"""Scrape a pipeline's metrics endpoint over HTTP and read it with prometheus_client's parser."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass
class Scrape:
    """One scrape: every sample, by name and labels, and the metric families as parsed."""

    text: str
    families: dict[str, object] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Scrape:
        scrape = cls(text)
        for family in text_string_to_metric_families(text):
            scrape.families[family.name] = family
            scrape.samples.extend(family.samples)
        return scrape

    def value(self, name: str, **labels: str) -> float:
        """The sample `name` whose labels include `labels`; 0 when there is none (a counter
        not incremented yet), summed when several match."""
        return sum(s.value for s in self.samples if s.name == name and _has(s, labels))

    def find(self, name: str, **labels: str) -> list[Sample]:
        """Every sample `name` whose labels include `labels`."""
        return [s for s in self.samples if s.name == name and _has(s, labels)]

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """{value of `label`: sample value} for the samples `name`."""
        return {s.labels[label]: s.value for s in self.samples if s.name == name}


def _has(sample: Sample, labels: dict[str, str]) -> bool:
    return all(sample.labels.get(k) == v for k, v in labels.items())


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """(HTTP status, body) of `GET http://127.0.0.1:<port><path>`."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(port: int) -> Scrape:
    """`/metrics` of the pipeline on `port`, parsed."""
    status, text = get(port, "/metrics")
    assert status == 200, (status, text)
    return Scrape.parse(text)


def wait_for_scrape(
    port: int, condition: Callable[[Scrape], bool], timeout: float = 20.0, what: str = ""
) -> Scrape:
    """Scrape until `condition(scrape)` holds (the server may not be up yet); fail with the
    last scrape otherwise."""
    deadline = time.monotonic() + timeout
    last: Scrape | None = None
    while time.monotonic() < deadline:
        try:
            last = scrape(port)
        except (OSError, urllib.error.URLError):
            last = None
        else:
            if condition(last):
                return last
        time.sleep(0.2)
    text = last.text if last else "(no answer)"
    raise AssertionError(f"metrics never showed {what or condition}; last scrape:\n{text}")


def wait_for_status(port: int, path: str, status: int, timeout: float = 20.0) -> str:
    """GET `path` until it answers `status`; return the body."""
    deadline = time.monotonic() + timeout
    last: tuple[int, str] | None = None
    while time.monotonic() < deadline:
        try:
            last = get(port, path)
        except (OSError, urllib.error.URLError):
            last = None
        else:
            if last[0] == status:
                return last[1]
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {status}; last: {last}")
