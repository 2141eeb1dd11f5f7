"""Reading a Prometheus exposition the way a scraper does (prometheus-client's own parser)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when there is none)."""
    return sum(v for n, sample_labels, v in samples(text) if n == name and _includes(sample_labels, labels))


def label_values(text: str, name: str, label: str) -> set[str]:
    return {labels[label] for n, labels, _ in samples(text) if n == name and label in labels}


def _includes(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(key) == want for key, want in wanted.items())
