"""The book's Methods page, written from the code that does the work.

Every method the chapters use is named here once, with its reference, and every choice the
code makes is read from where the code makes it: the thresholds and penalties from the
modules that define them (:mod:`bridge_hsct.stats.cox_models`, :mod:`.multivariate`,
:mod:`.cox_table`, :mod:`.iptw`, :mod:`.narrative`, :mod:`.outcomes`, :mod:`.panels`), the test
names from :mod:`bridge_hsct.stats.group_tests`, and the build's settings (alpha, landmark,
small-cell threshold) from the chapter's parameters. Three choices are not a number in the
code but the way a function computes; they are stated here as constants
(:data:`SURVIVAL_CI`, :data:`COX_TIES`, :data:`PENALISED_TIES`) and each is checked against
the computation by a test (``tests/test_methods_page.py``), so that the page cannot drift
from what the code does.

:func:`methods_markdown` returns the page's computed sections as MyST Markdown; the Methods
notebook (``notebooks/methods.md``) shows them.
"""

from __future__ import annotations

from ..render.formatting import confidence_percent
from ..stats import cox_models, group_tests
from ..stats.survival import DAYS_PER_MONTH
from . import cox_table, multivariate, narrative, outcomes, panels
from .iptw import analysis as iptw
from .iptw.words import ordinal

#: Transform of the pointwise confidence intervals of Kaplan–Meier survival, 1 − KM
#: incidence, Aalen–Johansen incidence and median times (R's ``conf.type = "log-log"``);
#: checked against :func:`bridge_hsct.stats.survival.loglog_interval` by a test.
SURVIVAL_CI = "log-log"
#: Tie handling of the ordinary Cox model (:func:`bridge_hsct.stats.survival.fit_cox`),
#: checked against lifelines' Efron fit by a test.
COX_TIES = "Efron"
#: Tie handling of the Firth-penalised and the weighted Cox models (risk-set sums of
#: :mod:`bridge_hsct.stats.breslow`), checked against R's ``ties = "breslow"`` convention.
PENALISED_TIES = "Breslow"

#: The references the page cites, by key.
REFERENCES = {
    "kaplan1958": "Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. "
                  "J Am Stat Assoc. 1958;53:457–81.",
    "kalbfleisch2002": "Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time "
                       "Data. 2nd ed. Wiley; 2002 (log-log intervals, §4.3).",
    "brookmeyer1982": "Brookmeyer R, Crowley J. A confidence interval for the median survival "
                      "time. Biometrics. 1982;38:29–41.",
    "mantel1966": "Mantel N. Evaluation of survival data and two new rank order statistics "
                  "arising in its consideration. Cancer Chemother Rep. 1966;50:163–70.",
    "aalen1978": "Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous "
                 "Markov chains based on censored observations. Scand J Stat. 1978;5:141–50.",
    "gray1988": "Gray RJ. A class of K-sample tests for comparing the cumulative incidence of "
                "a competing risk. Ann Stat. 1988;16:1141–54.",
    "cox1972": "Cox DR. Regression models and life-tables. J R Stat Soc B. 1972;34:187–220.",
    "efron1977": "Efron B. The efficiency of Cox's likelihood function for censored data. "
                 "J Am Stat Assoc. 1977;72:557–65.",
    "breslow1974": "Breslow N. Covariance analysis of censored survival data. Biometrics. "
                   "1974;30:89–99.",
    "firth1993": "Firth D. Bias reduction of maximum likelihood estimates. Biometrika. "
                 "1993;80:27–38.",
    "heinze2001": "Heinze G, Schemper M. A solution to the problem of monotone likelihood in "
                  "Cox regression. Biometrics. 2001;57:114–9.",
    "verweij1994": "Verweij PJM, van Houwelingen HC. Penalized likelihood in Cox regression. "
                   "Stat Med. 1994;13:2427–36.",
    "imbens2000": "Imbens GW. The role of the propensity score in estimating dose-response "
                  "functions. Biometrika. 2000;87:706–10.",
    "mccaffrey2013": "McCaffrey DF, Griffin BA, Almirall D, et al. A tutorial on propensity "
                     "score estimation for multiple treatments using generalized boosted "
                     "models. Stat Med. 2013;32:3388–414.",
    "lin1989": "Lin DY, Wei LJ. The robust inference for the Cox proportional hazards model. "
               "J Am Stat Assoc. 1989;84:1074–8.",
    "austin2009": "Austin PC. Balance diagnostics for comparing the distribution of baseline "
                  "covariates between treatment groups in propensity-score matched samples. "
                  "Stat Med. 2009;28:3083–107.",
    "schemper1996": "Schemper M, Smith TL. A note on quantifying follow-up in studies of "
                    "failure time. Control Clin Trials. 1996;17:343–6.",
    "agresti2013": "Agresti A. Categorical Data Analysis. 3rd ed. Wiley; 2013 (Fisher's exact "
                   "test §3.5; linear-by-linear association §3.4).",
    "mann1947": "Mann HB, Whitney DR. On a test of whether one of two random variables is "
                "stochastically larger than the other. Ann Math Stat. 1947;18:50–60.",
    "kruskal1952": "Kruskal WH, Wallis WA. Use of ranks in one-criterion variance analysis. "
                   "J Am Stat Assoc. 1952;47:583–621.",
    "cao2025": "Cao W, Li N, Wang G, et al. Efficacy and safety comparison of CAR-T and "
               "blinatumomab immunotherapy as bridge-to-transplant strategies in "
               "relapsed/refractory B cell acute lymphoblastic leukemia. J Transl Med. "
               "2025;23:391.",
}


def cite(*keys: str) -> str:
    """``[Kaplan 1958; Efron 1977]``: first author and year of each reference (a key not in
    :data:`REFERENCES` is a KeyError)."""
    return "[" + "; ".join(f"{REFERENCES[key].split(' ')[0]} {key[-4:]}" for key in keys) + "]"


def _tests() -> str:
    return (f"{group_tests.FISHER.replace(' (two-sided)', '')} for two categories "
            f"{cite('agresti2013')}, the {group_tests.LINEAR_BY_LINEAR} for ordered "
            f"categories (disease status, HCT-CI), the {group_tests.CHI2} for unordered ones "
            f"with more levels, and the {group_tests.MANN_WHITNEY.replace(' (two-sided)', '')} "
            f"for continuous variables {cite('mann1947')} (exact when a group has at most "
            f"{group_tests.MANN_WHITNEY_EXACT_MAX} patients and no values are tied, else "
            "the normal approximation with continuity and tie corrections); with three or "
            "more groups the "
            f"{group_tests.CHI2} and the {group_tests.KRUSKAL} {cite('kruskal1952')} take their "
            "place. Every test is two-sided.")


def methods_markdown(alpha: float, landmark_months: float, min_cell_count: int = 0) -> str:
    """The computed sections of the Methods page (MyST Markdown, level-2 headings).

    Parameters
    ----------
    alpha : the build's significance level (intervals are 100(1 − alpha)%).
    landmark_months : where survival and incidence are read.
    min_cell_count : the build's small-cell threshold (0: off).
    """
    level = confidence_percent(alpha)
    day100 = outcomes.landmark_label(outcomes.DAY_100_MONTHS)
    landmark = outcomes.landmark_label(landmark_months)
    trim_low, trim_high = iptw.DEFAULT_TRIM_PERCENTILES
    small = (f"Any count of patients or events below {min_cell_count}, zero excepted, is "
             f"printed as “< {min_cell_count}” on every page and in every download (this build's "
             f"`min_cell_count` = {min_cell_count}), with any percentage that would give them "
             "away." if min_cell_count > 1 else
             "Small counts are printed as they are (this build's `min_cell_count` is "
             f"{min_cell_count}: suppression off); a centre sharing its book outside its "
             "walls can set a threshold.")
    sections = {
        "Settings of this build": [
            f"Every interval is a {level} confidence interval and a difference is called "
            f"statistically significant when its P value is below {alpha:g} (`alpha` = "
            f"{alpha:g}). Survival and incidence are read at {landmark} after the transplant, "
            f"acute GVHD at {day100}. Times are counted in days from the transplant and "
            f"shown in months of {DAYS_PER_MONTH:.4g} days (365.25 / 12).",
            small,
        ],
        "Survival": [
            f"Kaplan–Meier estimates {cite('kaplan1958')} with pointwise {level} confidence "
            f"intervals on the {SURVIVAL_CI} scale (Greenwood variance; R's "
            f"`conf.type = \"{SURVIVAL_CI}\"`) {cite('kalbfleisch2002')}. Median survival "
            f"times with the Brookmeyer–Crowley interval on the same scale "
            f"{cite('brookmeyer1982')}; “not reached” when the curve or a bound stays above "
            "50%. Curves are compared with the log-rank test over the whole follow-up "
            f"{cite('mantel1966')} (R's `survdiff`), with k − 1 degrees of freedom for k "
            "groups.",
            "Median follow-up is given two ways: by the reverse Kaplan–Meier method (time to "
            "last contact, deaths counted as censored) "
            f"{cite('schemper1996')}, the usual definition, and as the median of the observed "
            "times with deaths included, which is what the paper's Table 1 reports.",
        ],
        "Cumulative incidence": [
            "Incidence endpoints (non-relapse mortality, acute and chronic GVHD, engraftment) "
            "are estimated two ways. The paper's method is one minus a Kaplan–Meier curve in "
            "which competing events (relapse or death before the event) are censored, "
            "compared with the log-rank test; it treats patients who relapsed or died as if "
            "they could still have the event, and so overstates the incidence. Beside it the "
            f"book gives the Aalen–Johansen estimate {cite('aalen1978')}, which keeps competing "
            f"events as such, with {SURVIVAL_CI} {level} intervals, compared with Gray's test "
            f"{cite('gray1988')} (a port of R's `cmprsk::cuminc`). The Results text mentions "
            "the Aalen–Johansen reading when the two differ by "
            f"{100 * narrative.MATERIAL_GAP:g} percentage points or more.",
        ],
        "Cox models": [
            f"Univariable Cox models {cite('cox1972')} of each baseline factor, with "
            f"{COX_TIES}'s method for tied event times {cite('efron1977')}, Wald {level} "
            "intervals and Wald P values. The paper does not say how its software handled "
            f"ties; {COX_TIES} is this package's choice (that of R's `coxph` and of "
            "lifelines). A factor with a level without events has no finite hazard ratio "
            "and is reported as not estimable.",
            "Multivariable models (the paper's Table 2) are fitted four ways, because with so "
            "few events an ordinary fit is unstable or does not exist: the ordinary Cox "
            f"model ({COX_TIES} ties); Firth's penalised partial likelihood "
            f"{cite('firth1993', 'heinze2001')} ({PENALISED_TIES} ties), with profile "
            "penalised-likelihood intervals and penalised likelihood-ratio P values (Wald "
            f"above {cox_models.PROFILE_MAX_EVENTS:,} events); a ridge-penalised model "
            f"{cite('verweij1994')} (lifelines' L2 penalty {multivariate.RIDGE_PENALIZER:g} on "
            "the standardised coefficients); and the paper's stepwise selection: factors with "
            f"a univariable P below {cox_table.SCREENING_P:g} are candidates, enter at P < "
            f"{cox_models.ENTRY_P:g} and stay at P < {cox_models.STAY_P:g} "
            f"{cite('cao2025')}.",
        ],
        "Weighting (IPTW)": [
            "The paper's sensitivity analysis re-compares the groups after inverse "
            "probability of treatment weighting. One multinomial logistic propensity model "
            "of the group (the ordinary logistic model with two groups) on pre-declared "
            "confounders gives generalised propensity scores "
            f"{cite('imbens2000', 'mccaffrey2013')}; each patient is weighted by the "
            "stabilised inverse probability of the group received. The model has a ridge "
            f"penalty λ = {iptw.DEFAULT_PENALTY:g}; weights are truncated at the "
            f"{ordinal(trim_low)} and {ordinal(trim_high)} percentiles; groups of "
            f"fewer than {iptw.MIN_GROUP_SIZE} patients are left out. Balance is read from "
            "standardised "
            f"mean differences {cite('austin2009')} against {iptw.SMD_THRESHOLD:g}. Hazard "
            f"ratios come from weighted Cox models ({PENALISED_TIES} ties) with the Lin–Wei "
            f"robust variance {cite('lin1989')}, beside the unweighted ones.",
        ],
        "Baseline comparisons": [
            f"Each baseline variable is compared between the groups with the test its type "
            f"calls for: {_tests()} The paper names t-tests and chi-square tests; its "
            "categorical P values are reproduced by Fisher's exact and linear-by-linear "
            "tests on its own counts, which is why the book uses them, and since the book "
            "reports medians and ranges for continuous variables it compares them by rank.",
        ],
        "Multiplicity": [
            "No P value is adjusted for multiple testing; the paper mentions no adjustment "
            "either. The book makes "
            "many comparisons (every baseline row, every endpoint, every subgroup split of "
            "the figures), so at the "
            f"{alpha:g} level about one in {round(1 / alpha):g} comparisons of groups that "
            "do not differ comes out significant by chance: subgroup results are hypotheses, "
            "and a P value above the level means a difference was not shown, not that the "
            "groups are the same. The Results text says so where it counts significant "
            "baseline differences.",
        ],
        "Subgroups": [
            f"The figures split patients by age at {panels.AGE_THRESHOLD_YEARS:g} years (as "
            "the paper does) and by the factors of the paper's figures; a split with a single "
            "level in the data is not drawn, and the page says why.",
        ],
    }
    text = []
    for heading, paragraphs in sections.items():
        text.append(f"## {heading}\n\n" + "\n\n".join(paragraphs))
    used = sorted({key for key in REFERENCES if cite(key)[1:-1] in "\n".join(text)})
    text.append("## References\n\n" + "\n".join(
        f"- {cite(key)[1:-1]}: {REFERENCES[key]}" for key in used))
    return "\n\n".join(text)
