"""The ``MEDCODE_CHROMA_HOST`` path against a real chroma server (``chroma run`` from the chromadb package) on a
free loopback port, storing in a temp dir: a small index is built into it and searched from it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet
from medcode.config import load_settings
from medcode.errors import RetrievalError
from medcode.retrieval import HybridRetriever, build_index, index_dir, index_info

CODES_UNDER = ["E11", "E10", "I10", "I11", "J45"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chroma_cli() -> str | None:
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else shutil.which("chroma")


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """``chroma run`` on 127.0.0.1:<free port>, persisting in a temp dir; stopped after the module."""
    cli = _chroma_cli()
    if cli is None:
        pytest.skip("the chroma CLI (chromadb package) is not installed")
    store = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    log = (store / "server.log").open("wb")
    proc = subprocess.Popen(
        [cli, "run", "--path", str(store / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"chroma run exited: {(store / 'server.log').read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "chroma run did not answer its heartbeat"
            time.sleep(0.2)
        yield "127.0.0.1", port, store / "data"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_index_built_into_a_chroma_server_and_searched_from_it(
    chroma_server: tuple[str, int, Path], tmp_path: Path, codeset: ICD10CMCodeSet
) -> None:
    host, port, server_data = chroma_server
    # The code-set store is shared with the session's data dir; the index's lexical side stays local.
    settings = load_settings(data_dir=tmp_path / "data", chroma_host=host, chroma_port=port)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "codesets").symlink_to(codeset.path.parent, target_is_directory=True)
    assert CodeSetRegistry(settings).get().version == codeset.version
    codes = sorted({"E11.9", *(c for header in CODES_UNDER for c in codeset.billable_descendants(header, limit=60))})
    info = build_index(settings, codeset, codes=codes, progress=False)
    assert info.status == "complete"
    assert not (index_dir(settings, codeset.version) / "chroma").exists()  # vectors live on the server only
    assert any(server_data.rglob("*.sqlite3"))

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
    collections = client.list_collections()
    assert len(collections) == 1 and collections[0].count() == info.units

    retriever = HybridRetriever(settings, codeset, auto_build=False)
    try:
        dense = retriever.search("type 2 diabetes mellitus without complications", top_k=3, mode="dense")
        assert "E11.9" in [hit.code for hit in dense]  # the dense side answers from the server
        assert retriever.search("type 2 diabetes mellitus without complications", top_k=3)[0].code == "E11.9"
        assert retriever.search("essential hypertension", top_k=3)[0].code == "I10"
    finally:
        retriever.close()
    assert index_info(settings, codeset.version).status == "complete"

    # A server that is not there is a clear RetrievalError naming it, not a hang or a local fallback.
    gone = settings.model_copy(update={"chroma_port": _free_port(), "data_dir": tmp_path / "other"})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "codesets").symlink_to(codeset.path.parent, target_is_directory=True)
    with pytest.raises(RetrievalError, match=rf"chroma server {host}:{gone.chroma_port}"):
        build_index(gone, codeset, codes=codes[:5], progress=False)
