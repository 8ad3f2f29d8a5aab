"""Child process hosting llama.cpp's OpenAI-compatible HTTP server through xllamacpp.

Started by ``agent.llm._server.EmbeddedLLMServer`` as ``python -P <this file> '<json config>'``: run as a
script (not ``-m``) so the child imports only the standard library and xllamacpp, not the medcode packages.

Protocol: after the model has loaded and the server listens, print one JSON line
``{"base_url": "http://127.0.0.1:PORT"}`` to stdout (or ``{"error": "..."}`` and exit 3), then serve until
stdin reaches end of file (the parent closed it, or died) or SIGTERM/SIGINT arrives. llama.cpp logs go to
stderr, which the parent points at a log file; at the default verbosity they hold timings, never prompts.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any


def _params(config: dict[str, Any]) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(config["gguf"])
    params.model_alias = {str(config["alias"])}
    params.hostnames = ["127.0.0.1"]
    params.port = int(config.get("port", 0))  # 0 = a free port chosen by the OS
    parallel = int(config.get("parallel", 1))
    params.n_parallel = parallel
    params.n_ctx = int(config["context"]) * parallel  # llama.cpp splits n_ctx across slots
    threads = int(config["threads"])
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    if "poll" in config:
        params.cpuparams.poll = int(config["poll"])
        params.cpuparams_batch.poll = int(config["poll"])
    params.cache_prompt = True  # reuse the KV cache of a shared prompt prefix (system prompt)
    params.verbosity = int(config.get("verbosity", 3))
    return params


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(json.dumps({"error": "usage: _serve.py '<json config>'"}), flush=True)
        return 2
    config = json.loads(argv[1])
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        import xllamacpp

        server = xllamacpp.Server(_params(config))
    except Exception as exc:  # report any load failure to the parent, which raises a medcode error
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 3
    print(json.dumps({"base_url": server.listening_address}), flush=True)

    def _watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=_watch_stdin, name="stdin-watch", daemon=True).start()
    while not stop.wait(0.5):
        pass
    del server  # ~Server stops the HTTP listener and the inference loop
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
