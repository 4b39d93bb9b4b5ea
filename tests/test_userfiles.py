"""``finetune_theory._userfiles``: the user's tables, each problem one line."""

from __future__ import annotations

import pytest

from finetune_theory._userfiles import read_csv


def _one_line(info: pytest.ExceptionInfo[ValueError]) -> str:
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_a_table_is_read_with_its_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n1,2,3\n4,5,6\n")
    table = read_csv(str(path), "--data")
    assert list(table.columns) == ["a", "b", "y"] and table["y"].tolist() == [3, 6]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a;b\n1;2\n", "semicolons"),
        ("a\tb\n1\t2\n", "tabs"),
        ("a|b\n1|2\n", "bars"),
        ("a,b\n", "has no rows"),
    ],
)
def test_a_table_that_is_not_comma_separated_or_empty_is_refused(tmp_path, text, expected):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=expected) as info:
        read_csv(path, "--data")
    assert _one_line(info).startswith("--data file 't.csv'")


def test_a_single_column_without_a_separator_is_a_table(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("y\n1\n2\n")
    assert read_csv(path, "--data").shape == (2, 1)


def test_missing_files_folders_and_bytes_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist") as info:
        read_csv(tmp_path / "missing.csv", "--unlabelled")
    assert _one_line(info).startswith("--unlabelled file")
    with pytest.raises(ValueError, match="is a directory"):
        read_csv(tmp_path, "--data")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x81\x82,\x00\n\x93\x94")
    with pytest.raises(ValueError, match="could not be read as CSV") as info:
        read_csv(path, "--data")
    _one_line(info)
