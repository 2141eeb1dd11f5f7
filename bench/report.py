"""The bench's output: one row per figure, as a Markdown table and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class Ratio:
    """A figure divided by the mean of the reference runs beside it."""

    against: str
    reference: float
    value: float

    @classmethod
    def of(cls, figure: float | None, against: str, references: list[float]) -> Ratio:
        reference = sum(references) / len(references)
        return cls(against, round(reference, 1), round((figure or 0.0) / reference, 3) if reference else 0.0)


@attrs.define
class Row:
    config: str
    scenario: str
    connections: int
    per_second: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int = 0
    socket_errors: int = 0
    rss_mb: float | None = None
    ratios: list[Ratio] = attrs.field(factory=list)
    target: str = ""
    met: bool | None = None
    note: str = ""


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| config | scenario | conns | req/s | p50 ms | p99 ms | non-2xx | sock err | RSS MB | ratio "
        "| target |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for row in rows:
        ratios = "; ".join(f"{r.value:.2f} of {r.against} ({r.reference:,.0f})" for r in row.ratios) or "-"
        verdict = "" if row.met is None else (" ✓" if row.met else " ✗")
        target = (row.target + verdict).strip() or "-"
        scenario = row.scenario + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {row.config} | {scenario} | {row.connections} | {_number(row.per_second)} "
            f"| {_number(row.p50_ms, 2)} | {_number(row.p99_ms, 2)} | {row.non_2xx} | {row.socket_errors} "
            f"| {_number(row.rss_mb, 0)} | {ratios} | {target} |"
        )
    return "\n".join(lines) + "\n"


def write(out: Path, stem: str, header: str, rows: list[Row], meta: dict[str, Any]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    table = header.rstrip("\n") + "\n\n" + markdown(rows)
    md = out / f"{stem}.md"
    js = out / f"{stem}.json"
    md.write_text(table)
    js.write_text(json.dumps({"meta": meta, "rows": [attrs.asdict(row) for row in rows]}, indent=2))
    (out / "latest.md").write_text(table)
    (out / "latest.json").write_text(js.read_text())
    return md, js
