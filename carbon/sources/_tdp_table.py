"""Look up a CPU's TDP in the table codecarbon ships (``data/hardware/cpu_power.csv``).

The table has two columns, ``Name`` (``Intel Xeon Platinum 8375C``, ``AMD EPYC 7763``) and
``TDP`` (watts per package). Names reported by ``/proc/cpuinfo`` carry decorations the table
does not (``Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz``, ``AMD EPYC 7763 64-Core
Processor``), so both sides are normalised before matching:

1. exact match of the normalised names;
2. otherwise a token match: a table row matches when every one of its tokens appears in the
   CPU name and it has a model number (a token of three or more characters with a digit),
   so ``AMD Ryzen 7 7840HS w/ Radeon 780M Graphics`` finds ``AMD Ryzen 7 7840HS`` while
   ``i7-10700`` never stands in for ``i7-10700K`` (tokens compare whole). The row with the
   most tokens wins; a tie between rows with different TDPs is no match.

A vague name such as ``AMD EPYC`` (some VMs report only that) has no model number and
therefore matches nothing: a guess from the wrong row would look precise and be wrong.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

from carbon._codecarbon_data import codecarbon_data_path
from carbon.errors import SourceUnavailable

__all__ = ["TdpMatch", "load_tdp_table", "match_tdp", "normalise_cpu_name"]

TDP_TABLE = "hardware/cpu_power.csv"
_MODEL_NUMBER_MIN_CHARS = 3

_DECORATIONS = (
    re.compile(r"\((?:r|tm|c)\)|[®™]"),  # (R), (TM), (C) and their symbols
    re.compile(r"@\s*\d+(?:\.\d+)?\s*[gm]hz"),  # "@ 2.90GHz"
    re.compile(r"\b\d+(?:\.\d+)?\s*[gm]hz\b"),  # a bare frequency
    re.compile(r"\b(?:\d+|dual|quad|six|eight|twelve|sixteen)-cores?\b"),
    re.compile(r"\bwith radeon(?: [a-z0-9]+)* graphics\b"),
    re.compile(r"\((?:oem only|[^)]*w)\)"),  # table variants: "(OEM Only)", "(125W)"
    re.compile(r"\b\d+(?:st|nd|rd|th) gen\b"),  # "11th Gen Intel(R) Core(TM) ..."
    re.compile(r"\b(?:cpu|processor|apu)\b"),
)


@dataclass(frozen=True, slots=True)
class TdpMatch:
    """A row of the TDP table that matched a CPU name.

    Attributes:
        table_name: The row's ``Name`` as written in the table.
        tdp_w: The row's TDP in watts, per package.
    """

    table_name: str
    tdp_w: float


def normalise_cpu_name(name: str) -> str:
    """Lower-case a CPU name and strip vendor marks, frequencies, core counts and fillers."""
    text = name.lower()
    for pattern in _DECORATIONS:
        text = pattern.sub(" ", text)
    text = text.replace(",", " ")
    return " ".join(text.split())


@functools.cache
def _table_at(path: Path) -> tuple[TdpMatch, ...]:
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        try:
            for row in reader:
                name = str(row.get("Name") or "").strip()
                tdp = str(row.get("TDP") or "").strip()
                try:
                    tdp_w = float(tdp)
                except ValueError:
                    continue
                if name and math.isfinite(tdp_w) and tdp_w > 0:
                    rows.append(TdpMatch(table_name=name, tdp_w=tdp_w))
        except UnicodeDecodeError as exc:
            raise SourceUnavailable(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except csv.Error as exc:
            message = f"{path} line {reader.line_num}: malformed CSV: {exc}"
            raise SourceUnavailable(message) from exc
    return tuple(rows)


def load_tdp_table(path: Path | None = None) -> tuple[TdpMatch, ...]:
    """Read the TDP table once per process (rows without a usable TDP are dropped).

    A usable TDP is a finite number of watts above 0; a row without one, or without a
    name, is skipped.

    Args:
        path: The CSV to read; codecarbon's bundled table when ``None``.

    Raises:
        SourceUnavailable: codecarbon or its table is not installed, or the table is not
            UTF-8 CSV (the message names the line).
        OSError: The file cannot be read.
    """
    return _table_at(path if path is not None else codecarbon_data_path(TDP_TABLE))


def _is_model_number(token: str) -> bool:
    return len(token) >= _MODEL_NUMBER_MIN_CHARS and any(char.isdigit() for char in token)


def _unique(matches: list[TdpMatch]) -> TdpMatch | None:
    """Return the first match if all candidates agree on the TDP, else ``None``."""
    if matches and len({match.tdp_w for match in matches}) == 1:
        return matches[0]
    return None


@functools.cache
def _normalised(table: tuple[TdpMatch, ...]) -> tuple[tuple[TdpMatch, str], ...]:
    return tuple((row, normalise_cpu_name(row.table_name)) for row in table)


def match_tdp(cpu_name: str, table: tuple[TdpMatch, ...]) -> TdpMatch | None:
    """Find the TDP table row for a CPU name (see the module docstring for the rules)."""
    wanted = normalise_cpu_name(cpu_name)
    if not wanted:
        return None
    rows = _normalised(table)
    exact = [row for row, name in rows if name == wanted]
    if exact:
        return _unique(exact)

    tokens = set(wanted.split())
    best: list[TdpMatch] = []
    best_size = 0
    for row, name in rows:
        row_tokens = set(name.split())
        if not row_tokens <= tokens or not any(map(_is_model_number, row_tokens)):
            continue
        if len(row_tokens) > best_size:
            best, best_size = [row], len(row_tokens)
        elif len(row_tokens) == best_size:
            best.append(row)
    return _unique(best)
