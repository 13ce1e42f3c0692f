"""Every bad input of the catalogue (tests/bad_inputs.py) refused by a real `labkit` process with
exit status 2, saying what it must, creating or changing no file; and docs/bad-inputs.md shows
what the lab says today."""

import pytest
from bad_inputs import CASES, attempt, documented, row


@pytest.mark.slow  # a real process per case: about a minute for the catalogue
@pytest.mark.parametrize("case", CASES, ids=[case.given for case in CASES])
def test_bad_input_is_refused_before_anything_exists(case, tmp_path):
    outcome = attempt(case, tmp_path)
    assert outcome.code == 2, f"exit {outcome.code}, not a refusal:\n{outcome.said}"
    assert outcome.changed == [], f"the refusal created or changed {outcome.changed}"
    assert case.says in outcome.said
    assert documented().get(case.given) == row(case, outcome), (
        "docs/bad-inputs.md does not show what the lab says now: `python tests/bad_inputs.py` rewrites it"
    )


def test_the_page_lists_the_catalogue_and_nothing_else():
    assert list(documented()) == [case.given for case in CASES]
