"""The advisor's example files, shipped inside the package (they need no download).

``target.csv`` holds 40 oil-heated houses of the ``SaratogaHouses`` table (ten features and
``log_price``); ``source_coef.json`` is a ridge regression fitted on the gas-heated houses of the
same table (``coef`` by feature name, ``intercept``). ``examples/data/make_example_data.py`` in
the source repository rebuilds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["AdvisorExample", "advisor_example"]


@dataclass(frozen=True)
class AdvisorExample:
    """Where the advisor's example lies, and how to read it.

    Parameters
    ----------
    data : pathlib.Path
        The labelled target table (CSV).
    source : pathlib.Path
        The source model (JSON: ``coef`` by feature name, ``intercept``).
    target : str
        The label column of ``data``.
    description : str
        One sentence on what the files hold.

    Examples
    --------
    >>> example = advisor_example()
    >>> example.target, example.data.name, example.source.name
    ('log_price', 'target.csv', 'source_coef.json')
    """

    data: Path
    source: Path
    target: str
    description: str


def advisor_example() -> AdvisorExample:
    """The paths of the advisor's example: 40 target houses and a source model.

    The files are package data, so they are there in a plain ``pip install finetune-theory``;
    ``finetune-theory advise --example`` reads them.

    Returns
    -------
    AdvisorExample
        The target table, the source model and the label column.

    Raises
    ------
    FileNotFoundError
        When the package was installed without its data files (for instance from a zip
        archive that cannot be read as files).

    Examples
    --------
    >>> import pandas as pd
    >>> example = advisor_example()
    >>> table = pd.read_csv(example.data)
    >>> table.shape
    (40, 11)
    >>> from finetune_theory import advise
    >>> advice = advise(table.drop(columns=example.target), table[example.target],
    ...                 {"gas-heated houses": example.source})
    >>> advice.n_labelled, advice.source_names
    (40, ['gas-heated houses'])
    """
    folder = Path(str(resources.files("finetune_theory.data") / "examples"))
    data, source = folder / "target.csv", folder / "source_coef.json"
    for path in (data, source):
        if not path.is_file():
            raise FileNotFoundError(
                f"the advisor's example file {path.name} is not installed with the package "
                f"(looked in {folder}); reinstall finetune-theory from a wheel or a checkout"
            )
    return AdvisorExample(
        data=data,
        source=source,
        target="log_price",
        description=(
            "40 oil-heated houses of Saratoga County (ten features, log sale price) and a "
            "ridge regression fitted on the gas-heated houses of the same table"
        ),
    )
