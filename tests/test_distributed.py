"""Batch coding on a real local Ray cluster (2 CPUs): order, a killed worker, resume, eval, the LLM cap."""

from __future__ import annotations

import http.server
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.config import Settings

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'medcode[ray]')")

CONDITIONS = [
    "Type 2 diabetes mellitus without complications.",
    "Essential hypertension, well controlled.",
    "Community acquired pneumonia.",
    "Chronic obstructive pulmonary disease with acute exacerbation.",
    "Major depressive disorder, single episode.",
    "Gastroesophageal reflux disease without esophagitis.",
    "Urinary tract infection.",
    "Hyperlipidemia, on a statin.",
    "Primary osteoarthritis of the right knee.",
    "Acute upper respiratory infection.",
    "Chest pain, unspecified.",
    "Mild intermittent asthma.",
]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local Ray cluster of 2 CPUs, started by this process; ``--ray`` connects to it."""
    temp = tmp_path_factory.mktemp("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=128 * 1024 * 1024,
        _temp_dir=str(temp),
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def _worker_pids() -> list[int]:
    """Process ids of the coding actors (Ray titles them ``ray::_CodingWorker``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::_CodingWorker"):
            pids.append(int(entry.name))
    return pids


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


def _codes(rows: list[dict[str, object]]) -> dict[str, list[str] | str]:
    out: dict[str, list[str] | str] = {}
    for row in rows:
        codes = row.get("codes")
        out[str(row["note_id"])] = [c["code"] for c in codes] if isinstance(codes, list) else "error"
    return out


def test_code_batch_on_ray_keeps_order_survives_a_killed_worker_and_resumes(
    small_index_settings: Settings, ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(small_index_settings.data_dir)
    batch = tmp_path / "in.jsonl"
    rows = [
        json.dumps({"id": f"n{i:02d}", "text": f"ASSESSMENT AND PLAN:\n1. {CONDITIONS[i % len(CONDITIONS)]}\n"})
        for i in range(36)
    ]
    rows.insert(5, "{not json")  # an unusable line is an error line in its place, as without Ray
    batch.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ids = [f"n{i:02d}" for i in range(5)] + ["line-6"] + [f"n{i:02d}" for i in range(5, 36)]
    base = ["--data-dir", data_dir, "code-batch", str(batch), "--proposer", "retrieval", "--no-record"]

    local = tmp_path / "local.jsonl"
    assert main([*base, "--out", str(local)]) == 1  # the unusable line fails
    expected = _codes(_lines(local))

    # Two workers; once results flow, one worker process is SIGKILLed: Ray restarts it, its notes are retried.
    out = tmp_path / "ray.jsonl"
    killed: list[tuple[int, int]] = []  # (pid, lines written when it was killed)

    def kill_one() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            written = len(_lines(out))
            pids = _worker_pids()
            if written >= 1 and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append((pids[0], written))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    assert main([*base, "--out", str(out), "--ray", "--ray-workers", "2"]) == 1
    killer.join(timeout=5)
    assert killed, "no worker was killed"
    assert killed[0][1] < len(ids), "the worker was killed after the batch had finished"
    got = _lines(out)
    assert [row["note_id"] for row in got] == ids  # input order, nothing lost, nothing twice
    assert _codes(got) == expected  # the same codes as one process
    assert "E11.9" in _codes(got)["n00"] and "I10" in _codes(got)["n01"]
    assert "coded 36 note(s), 1 failed now" in capsys.readouterr().err

    # A crash mid-write: keep 10 lines and a torn one; a rerun on Ray completes it without duplicates.
    text = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(text[:10]) + '{"note_id": "n10", "co', encoding="utf-8")
    # One worker this time (cheaper to start); the unusable line (line 6) is done and is not retried without
    # --retry-failed, but it still counts as failed (exit 1).
    assert main([*base, "--out", str(out), "--ray", "--ray-workers", "1"]) == 1
    assert [row["note_id"] for row in _lines(out)] == ids
    assert _codes(_lines(out)) == expected
    err = capsys.readouterr().err
    assert "coded 27 note(s), 0 failed now, 10 already done; 1 note(s) failed in all" in err


def test_code_batch_on_ray_writes_fhir_bundles_like_one_process(
    small_index_settings: Settings, ray_cluster: None, tmp_path: Path
) -> None:
    from fhir.resources.R4B.bundle import Bundle

    batch = tmp_path / "in.jsonl"
    rows = [json.dumps({"id": f"f{i}", "text": f"ASSESSMENT AND PLAN:\n1. {CONDITIONS[i]}\n"}) for i in range(4)]
    rows.insert(2, '{"id": "empty", "text": ""}')  # a note that fails: an OperationOutcome Bundle in its place
    batch.write_text("\n".join(rows) + "\n", encoding="utf-8")
    base = ["--data-dir", str(small_index_settings.data_dir), "code-batch", str(batch), "--proposer", "retrieval"]
    base += ["--no-record", "--format", "fhir"]
    local, ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main([*base, "--out", str(local)]) == 1
    assert main([*base, "--out", str(ray), "--ray", "--ray-workers", "1"]) == 1

    def summary(path: Path) -> list[tuple[str, list[str]]]:
        out = []
        for bundle in _lines(path):
            Bundle.model_validate(bundle)
            resources = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}  # type: ignore[index]
            claim = resources.get("Claim", {})
            codes = [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim.get("diagnosis", [])]
            out.append((str(bundle["identifier"]["value"]), codes or sorted(resources)))  # type: ignore[index]
        return out

    got = summary(ray)
    assert got == summary(local)
    assert [note_id for note_id, _ in got] == ["f0", "f1", "empty", "f2", "f3"]
    assert got[2][1] == ["OperationOutcome"] and "E11.9" in got[0][1]


def test_eval_on_ray_writes_the_same_predictions(
    small_index_settings: Settings, ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(small_index_settings.data_dir)
    base = ["--data-dir", data_dir, "eval", "--proposer", "retrieval", "--limit", "4"]
    assert main([*base, "--out", str(tmp_path / "local")]) == 0
    assert main([*base, "--out", str(tmp_path / "ray"), "--ray", "--ray-workers", "2"]) == 0
    capsys.readouterr()

    def predictions(name: str) -> list[tuple[str, list[str]]]:
        path = tmp_path / name / "predictions.jsonl"
        return [(r["id"], r["predicted"]) for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())]

    assert len(predictions("ray")) == 4 and predictions("ray") == predictions("local")
    local = json.loads((tmp_path / "local" / "metrics.json").read_text())
    remote = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    assert remote["micro_f1"] == local["micro_f1"]


class _CountingLLM(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers slowly and counts the requests it serves at once."""

    lock = threading.Lock()
    active = 0
    peak = 0
    served = 0

    def do_POST(self) -> None:
        cls = type(self)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with cls.lock:
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
        time.sleep(0.15)
        with cls.lock:
            cls.active -= 1
            cls.served += 1
        message = {"role": "assistant", "content": "not the schema"}
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "counting",
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_workers_share_a_remote_llm_under_a_concurrency_cap(
    small_index_settings: Settings,
    ray_cluster: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MEDCODE_LLM_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("MEDCODE_LLM_MODEL", "counting")
    batch = tmp_path / "in.jsonl"
    batch.write_text(
        "".join(
            json.dumps({"id": f"n{i}", "text": f"ASSESSMENT AND PLAN:\n1. {CONDITIONS[i]}\n"}) + "\n" for i in range(4)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    data_dir = str(small_index_settings.data_dir)
    try:
        cmd = ["--data-dir", data_dir, "code-batch", str(batch), "--out", str(out), "--proposer", "llm"]
        assert main([*cmd, "--no-record", "--ray", "--ray-workers", "2", "--llm-concurrency", "1"]) == 0
    finally:
        server.shutdown()
    capsys.readouterr()
    rows = _lines(out)
    assert [r["note_id"] for r in rows] == [f"n{i}" for i in range(4)]
    # Every note reached the endpoint (the model's output is invalid, so each goes to a human) ...
    assert all("LLM_OUTPUT_INVALID" in r["routing"]["reasons"] for r in rows)  # type: ignore[index]
    assert _CountingLLM.served >= 4
    # ... and two workers never had more than one call in flight at once.
    assert _CountingLLM.peak == 1


def test_ray_flags_without_ray_or_with_bad_values(
    small_index_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "in.jsonl"
    batch.write_text(json.dumps({"id": "a", "text": "Essential hypertension."}) + "\n", encoding="utf-8")
    cmd = ["--data-dir", str(small_index_settings.data_dir), "code-batch", str(batch), "--out", str(tmp_path / "o")]
    assert main([*cmd, "--ray-workers", "2"]) == 2
    assert "need --ray" in capsys.readouterr().err
    assert main([*cmd, "--ray", "--ray-workers", "0"]) == 2
    assert "--ray-workers must be at least 1" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main([*cmd, "--ray"]) == 2
    assert "pip install 'medcode[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was coded
