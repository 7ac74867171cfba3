"""Stream rows out of a `.csv` or `.xlsx` file, one dict per non-empty row.

xlsx is opened with openpyxl in read-only mode, which parses the sheet lazily, so a large
file is never held in memory. Row numbers are the spreadsheet's own (header is row 1).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import ValidationError

SUPPORTED = (".csv", ".xlsx")


@dataclass(frozen=True, slots=True)
class SourceRow:
    number: int
    values: dict[str, Any]


def header_name(value: Any) -> str:
    return str(value or "").strip().lower().replace(" ", "_").replace("-", "_")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _rows(header: list[str], cells: Iterator[tuple[int, list[Any]]]) -> Iterator[SourceRow]:
    for number, raw in cells:
        if all(_blank(v) for v in raw):
            continue
        values = {
            name: (v.strip() if isinstance(v, str) else v)
            for name, v in zip(header, raw, strict=False)
            if name and not _blank(v)
        }
        yield SourceRow(number, values)


def count_rows(path: Path) -> int | None:
    """Data rows for the progress bar (None when the file does not say cheaply)."""
    check_file(path)
    if path.suffix.lower() == ".csv":
        with path.open("rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.worksheets[0].max_row
        return rows - 1 if rows else None
    finally:
        workbook.close()


def check_file(path: Path) -> None:
    if path.suffix.lower() not in SUPPORTED:
        raise ValidationError("import files are .csv or .xlsx", code="UNSUPPORTED_FILE")
    if not path.is_file():
        raise ValidationError("the import file does not exist", code="FILE_NOT_FOUND")


@contextmanager
def open_rows(path: Path) -> Iterator[tuple[list[str], Iterator[SourceRow]]]:
    """The header and a lazy iterator over data rows; the file closes on leaving."""
    check_file(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = _header(next(reader, None))
            cells = ((reader.line_num, list(row)) for row in reader)
            yield header, _rows(header, cells)
        return
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = _header(next(rows, None))
        yield header, _rows(header, ((n, list(r)) for n, r in enumerate(rows, start=2)))
    finally:
        workbook.close()


def _header(first: Any) -> list[str]:
    if first is None:
        raise ValidationError("the file is empty", code="EMPTY_FILE")
    return [header_name(h) for h in first]
