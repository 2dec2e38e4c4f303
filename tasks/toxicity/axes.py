"""Celadon's five toxicity axes and how a labelled hate-speech record maps onto them.

"Toxicity of the Commons" (Arnett et al. 2024) scores race and origin, gender and sexuality,
religion, ability and violence separately, because a curation team removes, keeps or rebalances each
differently. Public data rarely labels the axes, but HateCheck (Röttger et al. 2021) and Multilingual
HateCheck (Röttger et al. 2022) name each case's target group and functionality: the group gives the
identity axis, the threat functionalities give violence. A toxic record without a target (a Davidson
tweet, a Stormfront sentence) says nothing about the axes: its axis labels are unknown, not negative,
and training masks them. A non-toxic record is negative on every axis.
"""

from __future__ import annotations

AXES = ("race_origin", "gender_sexuality", "religion", "ability", "violence")
OVERALL = "toxicity"  # the head every toxic record labels; the axes are the others
HEADS = (OVERALL, *AXES)

# Target groups of HateCheck and the ten MHC languages (their papers' tables), lower-cased, by axis.
# A group outside this table leaves the identity axes unknown for that record rather than negative.
TARGET_AXES: dict[str, str] = {
    **dict.fromkeys(
        (
            "black people",
            "immigrants",
            "refugees",
            "indigenous people",
            "asians",
            "arabs",
            "roma",
            "gypsies",
            "foreigners",
            "migrants",
            "people of colour",
            "lower caste",
            "dalits",
            "indians",
            "pakistanis",
        ),
        "race_origin",
    ),
    **dict.fromkeys(
        ("women", "trans people", "gay people", "lesbians", "bisexual people", "lgbt"), "gender_sexuality"
    ),
    **dict.fromkeys(("muslims", "jews", "hindus", "christians", "sikhs", "atheists"), "religion"),
    **dict.fromkeys(("disabled people", "people with disabilities"), "ability"),
}
# HateCheck's threat functionalities: direct threats and normative statements of violence.
THREAT_FUNCTIONALITIES = frozenset({"threat_dir_h", "threat_norm_h"})


def record_labels(toxic: bool, target: str | None = None, functionality: str | None = None) -> dict[str, bool | None]:
    """One label per head for a record: True, False, or None (unknown, masked in training).

    `target` and `functionality` are HateCheck's fields; a record without a functionality is not a
    HateCheck-style case, so a toxic one leaves every axis unknown.
    """
    labels: dict[str, bool | None] = {OVERALL: toxic}
    if not toxic:
        return labels | dict.fromkeys(AXES, False)
    if functionality is None:
        return labels | dict.fromkeys(AXES, None)
    axis = TARGET_AXES.get((target or "").strip().lower())
    for name in AXES[:-1]:
        labels[name] = None if target and axis is None else axis == name
    labels["violence"] = functionality in THREAT_FUNCTIONALITIES
    return labels
