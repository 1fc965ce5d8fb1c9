"""Rows of the CSV tables carbon ships (``data/*.csv``), checked as they are read.

Each table is read once per process; a table that does not parse is a packaging fault, and
the :class:`~carbon.errors.ConfigError` says where: the table, the line and the column.
Callers check the values of each row with :func:`cell_error` for the same wording.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from carbon.errors import ConfigError


def cell_error(table: str, line: int, column: str, problem: str) -> ConfigError:
    """The error of a bad cell: ``data/x.csv line 7, column 'year': <problem>``."""
    return ConfigError(f"{table} line {line}, column {column!r}: {problem}")


def table_rows(
    text: str, table: str, columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a CSV table as ``(line, {column: cell})``, blank lines skipped.

    Args:
        text: The table's text.
        table: Its name in messages (``data/embodied.csv``).
        columns: Columns the header must have (others are kept too).

    Raises:
        ConfigError: The text is not CSV, has no header or lacks a column, or a row has
            another number of cells than the header, or a cell holds NUL.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None:
            raise ConfigError(f"{table} line 1: the table is empty, with no header row")
        names = [name.strip() for name in header]
        missing = [column for column in columns if column not in names]
        if missing:
            raise ConfigError(f"{table} line 1: no column {missing[0]!r} in the header")
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(names):
                raise ConfigError(
                    f"{table} line {reader.line_num}: {len(fields)} cells, "
                    f"but the header has {len(names)}"
                )
            cells = dict(zip(names, fields, strict=True))
            nul = next((name for name, cell in cells.items() if "\x00" in cell), None)
            if nul is not None:
                raise cell_error(table, reader.line_num, nul, "holds a NUL character")
            yield reader.line_num, cells
    except csv.Error as exc:
        raise ConfigError(f"{table} line {reader.line_num}: malformed CSV: {exc}") from None
