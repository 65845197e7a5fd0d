"""Reading the tables ``kubectl get`` prints, as a user reads them."""

from __future__ import annotations

import re


def printed_columns(table: str) -> dict[str, str]:
    """The first row of a table kubectl printed, by column name: each value is read from under
    its header, so an empty column stays empty instead of shifting the ones after it."""
    header, row = table.splitlines()[:2]
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    ends = [*starts[1:], None]
    return {
        header[start:end].strip(): row[start:end].strip()
        for start, end in zip(starts, ends, strict=True)
    }
