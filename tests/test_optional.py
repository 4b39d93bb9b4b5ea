"""``finetune_theory._optional.require``: an optional package, or an error naming its extra."""

from __future__ import annotations

import sys

import pytest

from finetune_theory import _optional
from finetune_theory.exceptions import MissingExtraError


def test_an_installed_module_is_returned_as_imported():
    mod = _optional.require("json", "data")
    assert mod is sys.modules["json"]
    assert _optional.require("os.path", "data") is sys.modules["os.path"]


def test_a_missing_module_names_its_extra_and_purpose_and_keeps_the_cause():
    with pytest.raises(MissingExtraError) as info:
        _optional.require("no_such_module_xyz", "torch", purpose="the networks")
    msg = str(info.value)
    assert "'no_such_module_xyz'" in msg and "(needed for the networks)" in msg
    assert msg.endswith("pip install 'finetune-theory[torch]'")
    assert isinstance(info.value, ImportError)  # `except ImportError` still catches it
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert "\n" not in msg


def test_without_a_purpose_the_message_has_no_empty_parentheses():
    with pytest.raises(ImportError, match=r"not installed; install the 'data' extra") as info:
        _optional.require("no_such_module_xyz")
    assert "()" not in str(info.value)


def test_the_data_package_keeps_its_name_for_the_same_function():
    from finetune_theory.data import _optional as data_optional

    assert data_optional.require is _optional.require
    assert data_optional.MissingExtraError is MissingExtraError
