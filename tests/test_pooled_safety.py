"""A consortium may publish its pooled book: labels from the centres' data and the names of
their bundle files stay text on every page, as in the single-centre book
(``tests/test_site_safety.py``)."""

import pytest

from bridge_hsct.book.parameters import Parameters
from bridge_hsct.book.pooled_build import build_pooled
from bridge_hsct.paper import bundle as bundles
from conftest import HOSTILE_LABELS
from test_bundle import split_into_centres, synthetic_raw
from test_site_safety import elements_made, visible_text

LABELS = list(HOSTILE_LABELS.values())
BUNDLE_NAMES = ["<img src=x onerror=alert(this)> *A*.bundle.zip",
                "`c` {{ data_banner }} |u| _v_.bundle.zip"]


@pytest.fixture(scope="module")
def hostile_pooled_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile_pooled")
    raw = synthetic_raw()
    raw["arm"] = raw["arm"].map(HOSTILE_LABELS)
    paths = []
    for name, centre in zip(BUNDLE_NAMES, split_into_centres(raw, 2, seed=5), strict=True):
        paths.append(folder / name)
        bundles.write_bundle(centre, "arm", paths[-1])
    return build_pooled(folder / "site", Parameters(bundles=[str(p) for p in paths]),
                        log=lambda *a: None)


def test_no_label_or_bundle_name_becomes_an_element(hostile_pooled_site):
    pages = sorted(p for p in hostile_pooled_site.glob("*.html"))
    assert len(pages) >= 8
    for page in pages:
        made = elements_made(page, ("<em>A</em>", "<em>u</em>", "<em>v</em>", "<em>x</em>"))
        assert not made, (page.name, made)


def test_labels_and_bundle_names_read_as_written(hostile_pooled_site):
    for name in ("survival", "incidence", "tables"):
        text = visible_text(hostile_pooled_site / f"{name}.html")
        for label in LABELS:
            assert label in text, (name, label)
    for name in ("centres", "provenance"):
        text = visible_text(hostile_pooled_site / f"{name}.html")
        for bundle in BUNDLE_NAMES:
            assert bundle in text, (name, bundle)
