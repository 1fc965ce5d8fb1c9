"""Runs as CSV and JSON: every figure with the method and source it was obtained with.

The rows are run summaries (:func:`carbon.store.summary.run_summary`), so the export says
what the CLI and the API say. Nested values are flattened to dotted columns in CSV
(``energy_by_component_j.gpu``); unknown values are empty cells in CSV and ``null`` in
JSON, never 0.

Text in a CSV cell that a spreadsheet would take for a formula (it starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return: a run named ``=HYPERLINK(...)``, say) is
written with a leading apostrophe, so it opens as the text it is; numbers are left as
numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FIRST_COLUMNS = (
    "id",
    "project",
    "name",
    "kind",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "energy_j",
    "co2e_g",
    "co2e_method",
    "co2e_market_g",
    "region",
    "intensity_g_per_kwh",
    "intensity_source",
    "pue",
    "pue_source",
)
"""Columns that lead every CSV export, in this order; the others follow sorted."""


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: empty for unknown, text that could run as a formula defused.

    Only text is changed: a number stays a number, so ``-3.5`` is still ``-3.5``.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, into)
    elif isinstance(value, list | tuple):
        into[prefix] = json.dumps(value, sort_keys=True, default=str)
    else:
        into[prefix] = value


def flatten_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row of a run summary; devices and warnings become JSON text cells."""
    row: dict[str, Any] = {}
    _flatten("", summary, row)
    return row


def runs_csv(summaries: Iterable[Mapping[str, Any]]) -> str:
    """The runs as CSV text with a header; columns are the union over all runs."""
    rows = [flatten_summary(summary) for summary in summaries]
    seen = {key for row in rows for key in row}
    columns = [c for c in FIRST_COLUMNS if c in seen] + sorted(seen - set(FIRST_COLUMNS))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(column) for column in columns])  # tag names come from users
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def runs_json(summaries: Sequence[Mapping[str, Any]], *, scope: Mapping[str, Any]) -> str:
    """The runs as one JSON document with what they cover (``scope``: period, project)."""
    return json.dumps({"scope": dict(scope), "runs": list(summaries)}, indent=2, allow_nan=False)
