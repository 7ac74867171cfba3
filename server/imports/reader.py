"""Stream rows out of a `.csv` or `.xlsx` file, one dict of cells by position per
non-empty row; `server/imports/columns.py` says which import column each position is.

xlsx is opened with openpyxl in read-only mode, which parses the sheet lazily, so a large
file is never held in memory. Row numbers are the spreadsheet's own (header is row 1).
A CSV may be UTF-8 (with or without BOM) or GB18030, as Excel on Chinese Windows saves it.
"""

from __future__ import annotations

import codecs
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
    """A row's cells by import column."""

    number: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SheetRow:
    """A row's non-blank cells by position in the header."""

    number: int
    cells: dict[int, Any]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _rows(cells: Iterator[tuple[int, list[Any]]]) -> Iterator[SheetRow]:
    for number, raw in cells:
        values = {
            i: (v.strip() if isinstance(v, str) else v) for i, v in enumerate(raw) if not _blank(v)
        }
        if values:
            yield SheetRow(number, values)


def count_rows(path: Path) -> int | None:
    """Data rows for the progress bar (None when the file does not say cheaply)."""
    check_file(path)
    if path.suffix.lower() == ".csv":
        with path.open("rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)  # a line may hold a quoted newline
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
def open_rows(path: Path) -> Iterator[tuple[list[str], Iterator[SheetRow]]]:
    """The header (as written) and a lazy iterator over data rows; the file closes on
    leaving."""
    check_file(path)
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding=_csv_encoding(path)) as handle:
            reader = csv.reader(handle)
            header = _header(next(reader, None))
            cells = ((reader.line_num, list(row)) for row in reader)
            yield header, _rows(cells)
        return
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = _header(next(rows, None))
        yield header, _rows((n, list(r)) for n, r in enumerate(rows, start=2))
    finally:
        workbook.close()


def _header(first: Any) -> list[str]:
    if first is None:
        raise ValidationError("the file is empty", code="EMPTY_FILE")
    return ["" if h is None else str(h).strip() for h in first]


def _csv_encoding(path: Path) -> str:
    """UTF-8 when the file decodes as UTF-8, else GB18030 (Excel's "CSV" on a Chinese
    system). Read in blocks: a large file is never held in memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while block := handle.read(1 << 16):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"
