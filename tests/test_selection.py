"""The per-note response model: the LLM can only answer with offered codes or "none"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from medcode.agent import build_choice_model


def test_fields_are_literals_of_the_offered_codes() -> None:
    model = build_choice_model([["E11.22", "E11.9"], ["I10"]])
    schema = model.model_json_schema()
    assert schema["properties"]["condition_1"]["enum"] == ["E11.22", "E11.9", "none"]
    assert schema["properties"]["condition_2"]["enum"] == ["I10", "none"]
    assert set(schema["required"]) == {"condition_1", "condition_2"}
    parsed = model.model_validate({"condition_1": "E11.22", "condition_2": "none"})
    assert parsed.model_dump() == {"condition_1": "E11.22", "condition_2": "none"}


@pytest.mark.parametrize(
    "answer",
    [
        {"condition_1": "E11.65", "condition_2": "I10"},  # a real code that was not offered
        {"condition_1": "I10", "condition_2": "I10"},  # offered, but for another condition
        {"condition_1": "E11.9"},  # a condition left out
        {"condition_1": "E11.9", "condition_2": "I10", "condition_3": "none"},  # an extra field
        {"condition_1": "e11.9", "condition_2": "I10"},  # not the exact string
    ],
)
def test_anything_else_fails_validation(answer: dict[str, str]) -> None:
    model = build_choice_model([["E11.22", "E11.9"], ["I10"]])
    with pytest.raises(ValidationError):
        model.model_validate(answer)


def test_duplicate_codes_are_listed_once_and_empty_input_is_refused() -> None:
    model = build_choice_model([["I10", "I10"]])
    assert model.model_json_schema()["properties"]["condition_1"]["enum"] == ["I10", "none"]
    with pytest.raises(ValueError, match="no conditions"):
        build_choice_model([])
    with pytest.raises(ValueError, match="no codes"):
        build_choice_model([[]])
