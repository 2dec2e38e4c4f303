"""The toxicity stage's wiring: what it reads and what the dataset card says it leaves."""

from __future__ import annotations

from flows.stages.toxicity import STAGE, limits, reads
from tasks.models import ProfanitySpec
from tasks.toxicity import ToxicityParams


def test_the_default_reads_each_documents_language_and_the_card_names_the_languages_it_scores():
    params = ToxicityParams()

    notes = limits(params)

    assert reads(params) == ("text", "lang") and not STAGE.uses_torch(params)
    assert any("15 languages" in note and "null scores" in note for note in notes)
    assert not any("profanity" in note for note in notes)


def test_the_profanity_option_reads_only_text_and_says_it_measures_english_profanity():
    params = ToxicityParams(scorers=(ProfanitySpec(name="toxicity"),))

    assert reads(params) == ("text",)
    assert any("English profanity only" in note for note in limits(params))
