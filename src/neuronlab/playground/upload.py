"""Your own 2-D points: a CSV of ``x, y, label`` rows that replaces the session's data set.

:func:`parse_csv` checks the file before anything is built and names the first problem in
the user's terms (the row, the column, the value): not UTF-8 text, a header other than
``x, y, label``, a row without three columns, a value that is not a finite number, a label
that is not a class number, too few or too many rows, a single class, a class number left
out. The header is optional: a first row whose x or y is not a number is read as one.

The points are rescaled into the playground's square as the generated data sets are (one
scale for both axes, so shapes keep their proportions). The rescaling is kept as a fitted
:class:`~neuronlab.preprocessing.MinMax` so that an exported model takes the CSV's own
coordinates.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np

from neuronlab.preprocessing import MinMax

__all__ = ["MAX_CLASSES", "MAX_ROWS", "MAX_UPLOAD_BYTES", "MIN_ROWS", "Upload", "parse_csv"]

MAX_UPLOAD_BYTES = 128 * 1024  # 1000 rows of full-precision floats take about 45 KB
MAX_ROWS = 1000  # as many points as a generated data set may have
MIN_ROWS = 20
MAX_CLASSES = 8  # one colour each (render.CLASS_COLORS)
MAX_ABS = 1e15  # bounds the coordinates, so the rescaling (sums, differences) stays finite
HEADER = ("x", "y", "label")
_SHOW = 40  # characters of a bad value quoted in a message


@dataclass(frozen=True)
class Upload:
    """Uploaded points: ``X`` float32 (n, 2) rescaled into [-1, 1]^2, ``y`` int64 (n,) in
    0..n_classes-1, and ``scaler``, the fitted MinMax that maps the CSV's coordinates to X."""

    X: np.ndarray
    y: np.ndarray
    n_classes: int
    scaler: MinMax

    def summary(self) -> dict[str, int]:
        return {"rows": len(self.y), "classes": self.n_classes}


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOW else text[:_SHOW] + "...")


def _number(text: str, row: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"row {row}, column {column}: {_show(text)} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"row {row}, column {column}: {_show(text)} is not a finite number")
    if abs(value) > MAX_ABS:
        raise ValueError(f"row {row}, column {column}: {_show(text)} is too large "
                         f"(coordinates up to {MAX_ABS:g} in size)")
    return value


def parse_csv(raw: bytes) -> Upload:
    """Read and check an uploaded CSV (see the module docstring); raises ValueError."""
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file has {len(raw)} bytes, over the limit of {MAX_UPLOAD_BYTES}")
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is allowed
    except UnicodeDecodeError as err:
        raise ValueError(f"the file is not UTF-8 text ({err.reason} at byte {err.start}); "
                         "save it as CSV (UTF-8)") from None
    if "\x00" in text:
        raise ValueError("the file has NUL bytes: it is not a text CSV file")
    xs: list[float] = []
    ys: list[float] = []
    labels: list[int] = []
    first = True
    try:
        for row, fields in enumerate(csv.reader(text.splitlines()), start=1):
            fields = [f.strip() for f in fields]
            if not any(fields):
                continue  # blank lines are allowed anywhere
            if len(fields) != 3:
                raise ValueError(f"row {row} has {len(fields)} column(s); every row must have "
                                 "3: x, y, label")
            if first:
                first = False
                if not (_is_number(fields[0]) and _is_number(fields[1])):
                    names = tuple(f.lower() for f in fields)
                    if names != HEADER:
                        raise ValueError(f"the header must be x, y, label; got "
                                         f"{', '.join(_show(f) for f in fields)}")
                    continue
            if len(labels) >= MAX_ROWS:
                raise ValueError(f"too many rows: at most {MAX_ROWS} points")
            xs.append(_number(fields[0], row, "x"))
            ys.append(_number(fields[1], row, "y"))
            label = _number(fields[2], row, "label")
            if label != int(label) or not 0 <= label < MAX_CLASSES:
                raise ValueError(f"row {row}, column label: {_show(fields[2])} is not a class "
                                 f"number (a whole number from 0 to {MAX_CLASSES - 1})")
            labels.append(int(label))
    except csv.Error as err:
        raise ValueError(f"the file is not a readable CSV: {err}") from None
    if len(labels) < MIN_ROWS:
        raise ValueError(f"too few rows: {len(labels)} point(s); at least {MIN_ROWS} are needed")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"every point has label {classes[0]}: a classifier needs at least "
                         "two classes")
    missing = sorted(set(range(classes[-1] + 1)) - set(classes))
    if missing:
        raise ValueError(f"labels must number the classes 0 to {classes[-1]} with none left out; "
                         f"no point has label {', '.join(map(str, missing))}")
    P = np.column_stack([xs, ys])
    centre = (P.max(axis=0) + P.min(axis=0)) / 2
    half = max(float(np.abs(P - centre).max()), 1e-12)
    scaler = MinMax().load_state_dict({"center": centre, "half_range": np.full(2, half)})
    X = np.ascontiguousarray(scaler.transform(P), dtype=np.float32)
    return Upload(X, np.array(labels, dtype=np.int64), classes[-1] + 1, scaler)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
