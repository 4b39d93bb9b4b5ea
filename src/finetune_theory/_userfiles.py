"""The user's tables, read with each problem one ``ValueError``.

Shared by the ``advise`` command and any code reading a user's table: the messages name the
file the way the caller does (``what``, e.g. the option that gave it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_csv"]


def read_csv(path: str | os.PathLike[str], what: str) -> pd.DataFrame:
    """Read a CSV file into a DataFrame, or raise a one-line ``ValueError``.

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        How the messages name the file (e.g. the option that gave it, ``"--data"``).

    Returns
    -------
    pandas.DataFrame
        The table, with at least one row.

    Raises
    ------
    ValueError
        For a missing file, a folder, a file pandas cannot parse, an empty table, or a single
        column whose name shows another separator than the comma.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "t.csv").write_text("a;b\\n1;2\\n")
    >>> read_csv(folder / "t.csv", "--data").shape
    Traceback (most recent call last):
    ...
    ValueError: --data file 't.csv' has a single column 'a;b' whose name holds semicolons: ...
    >>> _ = (folder / "t.csv").write_text("a,b\\n1,2\\n")
    >>> read_csv(folder / "t.csv", "--data").shape
    (1, 2)
    """
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {str(p)!r} is a directory; give a CSV file")
    if not p.is_file():
        raise ValueError(f"{what} file {str(p)!r} does not exist")
    try:
        table = pd.read_csv(p)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{what} file {p.name!r} could not be read as CSV ({first})") from None
    if table.shape[0] == 0:
        raise ValueError(f"{what} file {p.name!r} has no rows")
    if table.shape[1] == 1:
        col = str(table.columns[0])
        for sep, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in col:
                raise ValueError(
                    f"{what} file {p.name!r} has a single column {col[:40]!r} whose name holds "
                    f"{label}: the file seems to use {label} as the separator; save it with "
                    "commas"
                )
    return table
