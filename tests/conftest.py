import pandas as pd
import pytest


def small_cohort() -> pd.DataFrame:
    """Six valid patients in two arms with every kind of event history."""
    return pd.DataFrame({
        "patient_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "arm": ["Alpha", "Alpha", "Alpha", "Beta", "Beta", "Beta"],
        "age_years": [30, 45, 12, 58, 27, 40],
        "sex": ["M", "F", "M", "F", "F", "M"],
        "disease_status": ["first_relapse", "primary_refractory", "second_relapse",
                           "first_relapse", "third_or_later_relapse", "first_relapse"],
        "followup_days": [900, 400, 120, 1500, 60, 700],
        "death": [0, 1, 1, 0, 1, 0],
        "relapse": [0, 1, 0, 0, 0, 1],
        "relapse_days": [None, 200, None, None, None, 350],
        "agvhd_2_4": [1, 0, 1, 0, 0, 1],
        "agvhd_2_4_days": [25, None, 30, None, None, 40],
        "agvhd_3_4": [0, 0, 1, 0, 0, 1],
        "agvhd_3_4_days": [None, None, 35, None, None, 40],
    })


@pytest.fixture
def cohort_csv(tmp_path):
    path = tmp_path / "cohort.csv"
    small_cohort().to_csv(path, index=False)
    return path


@pytest.fixture
def write_csv(tmp_path):
    def write(frame: pd.DataFrame, name: str = "bad.csv"):
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path
    return write


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The book built once per test session from the default (synthetic) cohort."""
    from bridge_hsct.book.build import Parameters, build

    out = tmp_path_factory.mktemp("book") / "site"
    build(out, Parameters(), log=lambda *a, **k: None, cache=None)
    return out


#: Group labels a hostile cohort file could carry: HTML, Markdown, MyST and spreadsheet
#: syntax, and no digit, so that the disclosure scan of the same site sees only counts.
HOSTILE_LABELS = {
    "CAR-T": '=HYPERLINK("x") <script>alert("A")</script> *A* $x$',
    "Blinatumomab": "@SUM(B) <img src=x onerror=alert(this)> [b](javascript:alert(this)) "
                    "{{ data_file }} `c` {ref}`audit` _u_",
}
SECRET_NAME = "Secret-Surname-"


@pytest.fixture(scope="session")
def hostile_site(tmp_path_factory):
    """The book built at ``min_cell_count = 5`` from the synthetic cohort with hostile group
    labels and an extra column of patient names (which must never reach the site)."""
    from bridge_hsct.book.build import DEFAULT_DATA, Parameters, build

    folder = tmp_path_factory.mktemp("hostile")
    cohort = pd.read_csv(DEFAULT_DATA, dtype=str)
    cohort["arm"] = cohort["arm"].map(HOSTILE_LABELS)
    cohort["patient_name"] = SECRET_NAME + cohort["patient_id"]
    data = folder / "hostile.csv"
    cohort.to_csv(data, index=False)
    out = folder / "site"
    build(out, Parameters(data_path=str(data), min_cell_count=5), log=lambda *a, **k: None,
          cache=None)
    return out


def page_text(html_file) -> str:
    """The visible text of a built page, tags removed and white space folded."""
    import re

    html = html_file.read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def download(site, name: str) -> pd.DataFrame:
    """A CSV offered for download by the built site (exactly one file of that name)."""
    found = list((site / "_downloads").rglob(name))
    assert len(found) == 1, f"{name} is downloadable once"
    return pd.read_csv(found[0])


def as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as it reads back from CSV (same dtypes as the downloaded file)."""
    import io

    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


TEXT_SUFFIXES = {".html", ".csv", ".ipynb", ".txt", ".json", ".md", ".svg", ".js"}


def site_files(site):
    """Every page, download, figure and notebook a built site publishes (not its theme)."""
    return sorted(p for p in site.rglob("*") if p.is_file() and "_static" not in p.parts
                  and (p.suffix in TEXT_SUFFIXES or p.suffix == ".xlsx"))


def path_text(path) -> str:
    """A published file's text; for a workbook, every cell's value, one line per row (its
    XML would show cell references such as ``P10``, which are no one's data)."""
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        try:
            return "\n".join("\t".join("" if v is None else str(v) for v in row)
                             for sheet in book.worksheets
                             for row in sheet.iter_rows(values_only=True))
        finally:
            book.close()
    return path.read_text(encoding="utf-8", errors="replace")
