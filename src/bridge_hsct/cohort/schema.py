"""The cohort data dictionary, as code.

One row per patient. Times are whole or fractional **days since the HSCT (day 0)**; every
time-to-event variable comes as a pair: a 0/1 event indicator and the day it happened
(left empty when the event did not happen). Derived endpoints (OS, PFS, GRFS, NRM) are never
supplied by the user: :mod:`bridge_hsct.cohort.endpoints` computes them from these raw events.

This module is the single source for validation
(:func:`bridge_hsct.cohort.validate.validate_cohort`), the data-dictionary page of the book
and the blank template CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd
import pandera.pandas as pa

BINARY = (0, 1)
#: Cell texts that mean "unknown", read as an empty cell. A group label or identifier written
#: as one of them is refused rather than dropped (see the validation).
MISSING_WORDS = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL",
                           "null", "None", "#N/A", "#NA", "#N/A N/A", "<NA>"})


@dataclass(frozen=True)
class Variable:
    """One column of the cohort file.

    Parameters
    ----------
    name : column name in the CSV.
    kind : ``"id"``, ``"group"``, ``"binary"``, ``"category"``, ``"ordinal"``, ``"number"``,
        ``"days"`` (days since HSCT) or ``"date"``.
    label : what a reader sees in tables.
    description : what the column holds, for the data dictionary.
    required : whether a valid file must have the column.
    levels : allowed codes, in display (and, for ordinal, rank) order.
    minimum, maximum : allowed numeric range, inclusive.
    unit : unit of numeric values.
    event_of : for a ``days`` column, the 0/1 indicator column it belongs to.
    """

    name: str
    kind: str
    label: str
    description: str
    required: bool = False
    levels: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    event_of: str | None = None
    level_labels: dict = field(default_factory=dict)


def _binary(name, label, description):
    return Variable(name, "binary", label, description, levels=BINARY)


def _event(name, label, description):
    """An event indicator and its day, as a pair of variables."""
    return [
        _binary(name, label, f"1 if {description} happened after HSCT, else 0."),
        Variable(
            f"{name}_days", "days", f"{label}, day",
            f"Day after HSCT of {description}; empty when `{name}` is 0 (or unknown).",
            minimum=0, unit="days", event_of=name,
        ),
    ]


VARIABLES: list[Variable] = [
    Variable("patient_id", "id", "Patient", "Anonymous patient identifier, unique per row.",
             True),
    Variable("arm", "group", "Bridging therapy",
             "Treatment group compared in the book (in the paper: CAR-T or blinatumomab). "
             "Any labels, each one line of printable text; the book's `group_col` parameter can "
             "name another column (then this one may be absent)."),
    # --- baseline (Table 1) ---
    Variable("age_years", "number", "Age", "Patient age at HSCT.",
             minimum=0, maximum=120, unit="years"),
    Variable("sex", "category", "Sex", "Patient sex.", levels=("M", "F"),
             level_labels={"M": "Male", "F": "Female"}),
    Variable("disease_status", "ordinal", "Disease status",
             "Disease status before bridging immunotherapy.",
             levels=("primary_refractory", "first_relapse", "second_relapse",
                     "third_or_later_relapse"),
             level_labels={"primary_refractory": "Primary refractory",
                           "first_relapse": "First relapse",
                           "second_relapse": "Second relapse",
                           "third_or_later_relapse": "≥ Third relapse"}),
    _binary("ph_positive", "Ph-positive", "Philadelphia chromosome (BCR::ABL1) positive."),
    _binary("t315i", "T315I mutation", "ABL1 T315I mutation (Ph-positive patients)."),
    _binary("tp53_mutation", "TP53 mutation", "TP53 mutation."),
    _binary("mll_rearrangement", "MLL rearrangement", "KMT2A (MLL) rearrangement."),
    _binary("ikzf1_isoform6", "Ikaros isoform 6", "IKZF1 alteration (Ikaros isoform 6)."),
    _binary("e2a_pbx1", "E2A/PBX1 rearrangement", "TCF3::PBX1 (E2A/PBX1) rearrangement."),
    _binary("notch1_mutation", "NOTCH1 mutation", "NOTCH1 mutation."),
    _binary("ph_like", "Ph-like", "Ph-like gene expression profile."),
    _binary("complex_karyotype", "Complex karyotype", "Complex karyotype."),
    _binary("extramedullary_disease", "Extramedullary disease",
            "Extramedullary disease before immunotherapy."),
    _binary("prior_hsct", "Prior HSCT",
            "HSCT before the bridging immunotherapy (this transplant is a second HSCT)."),
    _binary("mrd_positive", "MRD positive before HSCT",
            "Minimal residual disease detectable (≥ 0.01%) in complete remission before HSCT."),
    Variable("hct_ci", "ordinal", "HCT-CI", "HCT comorbidity index score (3 means 3 or more).",
             levels=(0, 1, 2, 3), level_labels={0: "0", 1: "1", 2: "2", 3: "≥ 3"}),
    Variable("donor_age_years", "number", "Donor age", "Donor age at donation.",
             minimum=0, maximum=100, unit="years"),
    Variable("donor_sex", "category", "Donor sex", "Donor sex.", levels=("M", "F"),
             level_labels={"M": "Male", "F": "Female"}),
    Variable("donor_type", "category", "Donor type",
             "HID haploidentical, MSD matched sibling, MUD matched unrelated donor.",
             levels=("HID", "MSD", "MUD"),
             level_labels={"HID": "HID", "MSD": "MSD", "MUD": "MUD"}),
    Variable("abo_compatibility", "category", "ABO compatibility",
             "Donor-recipient ABO compatibility.", levels=("matched", "minor", "major"),
             level_labels={"matched": "Matched", "minor": "Minor mismatched",
                           "major": "Major mismatched"}),
    Variable("conditioning", "category", "Conditioning regimen",
             "TBI-based (TBI/Cy) or chemotherapy-based (Bu/Cy, Flu/Bu) conditioning.",
             levels=("TBI", "chemo"),
             level_labels={"TBI": "TBI-based", "chemo": "Chemotherapy-based"}),
    Variable("conditioning_regimen", "category", "Conditioning agents",
             "The conditioning regimen by its agents: total body irradiation with "
             "cyclophosphamide, busulfan with cyclophosphamide, or fludarabine with busulfan. "
             "Goes with `conditioning` (TBI/Cy is TBI-based, the others chemotherapy-based).",
             levels=("TBI/Cy", "Bu/Cy", "Flu/Bu"),
             level_labels={"TBI/Cy": "TBI/Cy", "Bu/Cy": "Bu/Cy", "Flu/Bu": "Flu/Bu"}),
    Variable("gvhd_prophylaxis", "category", "GVHD prophylaxis",
             "MTX: methotrexate, ciclosporin and mycophenolate mofetil; PT-Cy: "
             "post-transplant cyclophosphamide, ciclosporin and mycophenolate mofetil.",
             levels=("MTX", "PT-Cy"),
             level_labels={"MTX": "MTX + CsA + MMF", "PT-Cy": "PT-Cy + CsA + MMF"}),
    _binary("atg", "ATG", "Anti-thymocyte globulin given with the conditioning."),
    Variable("graft_source", "category", "Graft source",
             "PB peripheral blood; PB+BM peripheral blood and bone marrow.",
             levels=("PB", "PB+BM"), level_labels={"PB": "PB", "PB+BM": "PB + BM"}),
    Variable("cd34_dose", "number", "CD34+ cells", "Infused CD34+ cell dose.",
             minimum=0, maximum=100, unit="×10⁶/kg"),
    Variable("tnc_dose", "number", "Nucleated cells", "Infused nucleated cell dose.",
             minimum=0, maximum=100, unit="×10⁸/kg"),
    Variable("crs_grade", "ordinal", "CRS grade",
             "Worst cytokine release syndrome grade after bridging immunotherapy.",
             levels=(0, 1, 2, 3, 4)),
    _binary("icans", "ICANS", "Neurotoxicity (ICANS) after bridging immunotherapy."),
    Variable("hsct_date", "date", "HSCT date", "Date of the transplant (YYYY-MM-DD)."),
    # --- follow-up and outcomes ---
    Variable("followup_days", "days", "Follow-up",
             "Day after HSCT of death or, if alive, of last contact (or the data cut-off).",
             True, minimum=0, unit="days"),
    _binary("death", "Death", "1 if the patient died (on day `followup_days`), else 0."),
    *_event("relapse", "Relapse", "haematological or extramedullary relapse"),
    *_event("agvhd_2_4", "Grade II–IV aGVHD", "onset of grade II–IV acute GVHD"),
    *_event("agvhd_3_4", "Grade III–IV aGVHD", "onset of grade III–IV acute GVHD"),
    *_event("cgvhd", "Chronic GVHD", "onset of chronic GVHD"),
    _binary("cgvhd_severe", "Severe chronic GVHD",
            "1 if the chronic GVHD was extensive/severe (it then counts as a GRFS event)."),
    *_event("neutrophil_engraftment", "Neutrophil engraftment",
            "neutrophil engraftment (first of 3 days ≥ 0.5×10⁹/L)"),
    *_event("platelet_engraftment", "Platelet engraftment",
            "platelet engraftment (first of 7 days ≥ 20×10⁹/L without transfusion)"),
    _binary("tma", "TMA", "Transplant-associated thrombotic microangiopathy."),
    _binary("hemorrhagic_cystitis", "Haemorrhagic cystitis", "Haemorrhagic cystitis."),
    _binary("ptld", "PTLD", "Post-transplant lymphoproliferative disorder."),
    _binary("cmv_reactivation", "CMV reactivation", "CMV DNA ≥ 400 copies/mL in blood."),
    _binary("cmv_disease", "CMV disease", "CMV end-organ disease."),
    _binary("ebv_reactivation", "EBV reactivation", "EBV DNA ≥ 500 copies/mL."),
    _binary("hzv_hhv6_reactivation", "Herpes zoster or HHV-6",
            "Herpes zoster virus or HHV-6 reactivation (1 when either of the next two is)."),
    _binary("hzv_reactivation", "Herpes zoster", "Herpes zoster virus reactivation."),
    _binary("hhv6_reactivation", "HHV-6", "Human herpesvirus 6 reactivation."),
    _binary("pulmonary_infection", "Pulmonary infection", "Pulmonary infection."),
    _binary("upper_respiratory_infection", "Upper respiratory infection",
            "Upper respiratory tract infection."),
    _binary("soft_tissue_infection", "Soft tissue infection", "Skin or soft tissue infection."),
    _binary("gi_infection", "Gastrointestinal infection", "Gastrointestinal infection."),
    _binary("bloodstream_infection", "Bloodstream infection", "Bloodstream infection."),
    _binary("urinary_tract_infection", "Urinary tract infection", "Urinary tract infection."),
]

BY_NAME: dict[str, Variable] = {v.name: v for v in VARIABLES}
REQUIRED: list[str] = [v.name for v in VARIABLES if v.required]


def _column(var: Variable) -> pa.Column:
    checks = []
    if var.levels and var.kind in {"binary", "category", "ordinal"}:
        checks.append(pa.Check.isin(list(var.levels), error=f"one of {list(var.levels)}"))
    if var.minimum is not None:
        checks.append(pa.Check.ge(var.minimum, error=f">= {var.minimum}"))
    if var.maximum is not None:
        checks.append(pa.Check.le(var.maximum, error=f"<= {var.maximum}"))
    numeric = var.kind in {"binary", "number", "days"} or (
        var.kind == "ordinal" and all(isinstance(x, int) for x in var.levels)
    )
    dtype = "float64" if numeric else ("datetime64[ns]" if var.kind == "date" else "str")
    nullable = not var.required or var.kind == "days" and var.event_of is not None
    return pa.Column(
        dtype, checks=checks, required=var.required, nullable=nullable,
        unique=var.kind == "id", coerce=True, title=var.label, description=var.description,
    )


@dataclass(frozen=True)
class CrossRule:
    """A rule between columns: `check` (a frame to a boolean Series, True where the row
    keeps it) and its message `rule`, reported under `column` with the values of `shown`."""

    check: Callable[[pd.DataFrame], object]
    column: str
    rule: str
    shown: tuple


def _days_match_event(var: Variable) -> CrossRule:
    ind, days = var.event_of, var.name

    def check(df):
        if days not in df or ind not in df:
            return True
        return ~((df[ind] != 1) & df[days].notna())

    return CrossRule(check, days, f"`{days}` is given only when `{ind}` is 1",
                       (days, ind))


def _not_after_followup(days: str) -> CrossRule:
    def check(df):
        if days not in df or "followup_days" not in df:
            return True
        return ~(df[days] > df["followup_days"])

    return CrossRule(check, days,
                       f"`{days}` is after `followup_days` (death or last contact)",
                       (days, "followup_days"))


def _implies(stronger: str, weaker: str, days_order: bool) -> CrossRule:
    def check(df):
        if stronger not in df or weaker not in df:
            return True
        ok = ~((df[stronger] == 1) & (df[weaker] != 1))
        if days_order and f"{stronger}_days" in df and f"{weaker}_days" in df:
            ok &= ~(df[f"{stronger}_days"] < df[f"{weaker}_days"])
        return ok

    rule = f"`{stronger}` = 1 requires `{weaker}` = 1"
    shown = (stronger, weaker)
    if days_order:
        rule += f" and `{stronger}_days` ≥ `{weaker}_days`"
        shown += (f"{stronger}_days", f"{weaker}_days")
    return CrossRule(check, stronger, rule, shown)


def _part_of(parts: tuple[str, str], whole: str) -> list[CrossRule]:
    """`whole` is 1 when either of `parts` is: a part at 1 with the whole at 0, or the whole
    at 1 with both parts at 0, is a contradiction (a blank is unknown and contradicts
    nothing)."""
    def part_check(part):
        def check(df):
            if part not in df or whole not in df:
                return True
            return ~((df[part] == 1) & (df[whole] == 0))
        return CrossRule(check, part, f"`{part}` = 1 but `{whole}` = 0", (part, whole))

    def whole_check(df):
        if whole not in df or not all(p in df for p in parts):
            return True
        return ~((df[whole] == 1) & (df[parts[0]] == 0) & (df[parts[1]] == 0))

    rule = f"`{whole}` = 1 but `{parts[0]}` = 0 and `{parts[1]}` = 0"
    return [part_check(p) for p in parts] + [CrossRule(whole_check, whole, rule,
                                                          (whole, *parts))]


def _agents_match_kind(agents: str, kind: str, tbi: tuple[str, str]) -> CrossRule:
    """The conditioning's agents and its kind tell the same story: ``tbi`` pairs the
    TBI regimen with the TBI kind; every other regimen is chemotherapy-based."""
    def check(df):
        if agents not in df or kind not in df:
            return True
        known = df[agents].notna() & df[kind].notna()
        return ~(known & ((df[agents] == tbi[0]) != (df[kind] == tbi[1])))

    return CrossRule(check, agents, f"`{agents}` {tbi[0]} goes with `{kind}` {tbi[1]}, "
                       f"any other regimen with `{kind}` chemo", (agents, kind))


def _cross_rules() -> tuple[CrossRule, ...]:
    outcome_days = [v.name for v in VARIABLES if v.kind == "days" and v.event_of]
    return (
        *[_days_match_event(BY_NAME[d]) for d in outcome_days],
        *[_not_after_followup(d) for d in outcome_days],
        _implies("agvhd_3_4", "agvhd_2_4", days_order=True),
        _implies("cgvhd_severe", "cgvhd", days_order=False),
        *_part_of(("hzv_reactivation", "hhv6_reactivation"), "hzv_hhv6_reactivation"),
        _agents_match_kind("conditioning_regimen", "conditioning", ("TBI/Cy", "TBI")),
    )


#: Every rule between columns, fixed when the module is read.
CROSS_RULES: tuple[CrossRule, ...] = _cross_rules()
#: For each cross-column rule (by its message), the column a violation is reported under.
CROSS_RULE_COLUMN = MappingProxyType({r.rule: r.column for r in CROSS_RULES})
#: For each cross-column rule (by its message), the columns whose values a report shows.
CROSS_RULE_VALUES = MappingProxyType({r.rule: r.shown for r in CROSS_RULES})


def cohort_schema() -> pa.DataFrameSchema:
    """Build the pandera schema of a cohort file (unknown extra columns are allowed)."""
    return pa.DataFrameSchema(
        {v.name: _column(v) for v in VARIABLES},
        checks=[pa.Check(r.check, error=r.rule) for r in CROSS_RULES], strict=False,
        name="cohort", description="One row per transplanted patient.",
    )
