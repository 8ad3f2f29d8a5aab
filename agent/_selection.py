"""Per-request response models: the LLM may only name offered candidates and existing sentences.

The JSON schema of the model built here carries ``enum`` lists for codes and sentence ids,
so a grammar-constrained endpoint (llama.cpp ``json_schema``) cannot emit anything else;
the pydantic validators check the same for endpoints that only honour the schema loosely,
and instructor re-asks with the error when they fail.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator

__all__ = ["SelectionContext", "build_selection_model"]


class SelectionContext(BaseModel):
    """The validation context instructor passes to the response model's validators.

    instructor hands validators a plain dict (``info.context``); ``of`` accepts both forms.
    """

    candidate_codes: list[str]
    sentence_ids: list[int]

    @classmethod
    def of(cls, context: object) -> SelectionContext | None:
        if isinstance(context, SelectionContext):
            return context
        if isinstance(context, dict) and "candidate_codes" in context and "sentence_ids" in context:
            return cls.model_validate(context)
        return None


class _ChoiceBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("sentences", check_fields=False)
    @classmethod
    def _known_sentences(cls, value: list[int], info: ValidationInfo) -> list[int]:
        ctx = SelectionContext.of(info.context)
        if ctx is not None:
            unknown = sorted(set(value) - set(ctx.sentence_ids))
            if unknown:
                raise ValueError(f"sentence numbers {unknown} do not exist; cite only listed sentences")
        if not value:
            raise ValueError("cite at least one sentence number for every code")
        return sorted(dict.fromkeys(value))

    @field_validator("code", check_fields=False)
    @classmethod
    def _offered_code(cls, value: str, info: ValidationInfo) -> str:
        ctx = SelectionContext.of(info.context)
        if ctx is not None and value not in ctx.candidate_codes:
            raise ValueError(f"{value} is not in the candidate list; choose only listed codes")
        return value


def build_selection_model(candidate_codes: list[str], sentence_ids: list[int], max_codes: int = 8) -> type[BaseModel]:
    """A ``Selection`` model whose ``codes[].code`` is a Literal of the candidates.

    Raises ``ValueError`` when there are no candidates or no sentences (nothing to choose).
    """
    if not candidate_codes:
        raise ValueError("no candidate codes to choose from")
    if not sentence_ids:
        raise ValueError("no sentences to cite")
    code_type: Any = Literal[tuple(candidate_codes)]
    sentence_type: Any = Literal[tuple(sentence_ids)]
    choice = create_model(
        "CodeChoice",
        __base__=_ChoiceBase,
        code=(code_type, Field(description="a code from the candidate list")),
        sentences=(
            list[sentence_type],
            Field(min_length=1, max_length=4, description="numbers of the sentences that state it"),
        ),
    )
    selection = create_model(
        "Selection",
        __config__=ConfigDict(extra="forbid"),
        codes=(list[choice], Field(max_length=max_codes)),  # type: ignore[valid-type]
    )
    return selection
