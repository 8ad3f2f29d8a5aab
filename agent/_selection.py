"""Per-request response models: the LLM may only answer with the codes it was offered.

``build_choice_model`` makes one field per numbered condition, each a ``Literal`` of that
condition's codes plus ``"none"``. Its JSON schema carries the ``enum`` lists, so a grammar-
constrained endpoint (llama.cpp ``json_schema``) cannot emit anything else; the pydantic
validators check the same for endpoints that honour schemas loosely, and instructor re-asks with
the error when they fail.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = ["NONE", "build_choice_model"]

NONE = "none"


def build_choice_model(options: list[list[str]]) -> type[BaseModel]:
    """A ``Choices`` model with fields ``condition_1..N``, each one of its codes or ``"none"``.

    Raises ``ValueError`` when there are no conditions or a condition has no codes.
    """
    if not options:
        raise ValueError("no conditions to choose for")
    fields: dict[str, Any] = {}
    for n, codes in enumerate(options, start=1):
        if not codes:
            raise ValueError(f"condition {n} has no codes")
        allowed: Any = Literal[(*dict.fromkeys(codes), NONE)]
        fields[f"condition_{n}"] = (allowed, Field(description=f"a listed code for condition {n}, or none"))
    model: type[BaseModel] = create_model("Choices", __config__=ConfigDict(extra="forbid"), **fields)
    return model
