"""Markdown tables, as every benchmark script prints them (``docs/performance.md`` quotes them),
and the fastest-of-N timer they share.

Imported by its sibling scripts (``from tables import print_table``): a script run as
``python benchmarks/NAME.py`` has this folder on its path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    right_from: int | None = None,
) -> None:
    """Print a markdown table: ``title`` as a ``##`` heading (none when None), the header, then
    each row as ``rows`` yields it, so a generator's rows show as they are measured (minutes
    apart in a long benchmark). Cells are printed with ``str``; columns from index
    ``right_from`` on are right-aligned (counts)."""
    if title is not None:
        print(f"\n## {title}")
    print("| " + " | ".join(columns) + " |")
    right = len(columns) if right_from is None else right_from
    print("|" + "|".join("---:" if i >= right else "---" for i in range(len(columns))) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def print_records(title: str | None, records: Sequence[Mapping[str, str]]) -> None:
    """:func:`print_table` of ``records``: dicts with the same keys, the columns."""
    columns = list(records[0])
    print_table(title, columns, ([record[c] for c in columns] for record in records))


def timed(fn: Callable[[], object], repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
