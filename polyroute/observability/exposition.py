"""Reading Prometheus' text exposition back into numbers (for tests and tools)."""

from __future__ import annotations


def parse_exposition(text: str) -> dict[str, float]:
    """Samples of a text exposition as ``{'name{label="v",...}': value}`` (labels sorted);
    for tests and tools."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def sum_samples(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric == name and all(w in rest.rstrip("}").split(",") for w in wanted):
            total += value
    return total
