"""The wheel installs one import name, ``medcode``, and lives beside PyPI packages named like our stages.

Before the layout change the wheel put ``agent``, ``validators``, ``evals``... at the top of
site-packages, where PyPI's ``validators`` (a data-validation library) overwrote ours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import medcode

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("codesets", "retrieval", "validators", "agent", "review", "evals", "monitoring", "copilot")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the source tree: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path_factory.mktemp("wheel-source") / "medcode"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "*_cache", "runs", "docs"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
    )
    (found,) = out.glob("medcode-*.whl")
    return found


def test_the_wheel_has_one_top_level_name_and_no_tools_or_tests(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"medcode", f"medcode-{medcode.__version__}.dist-info"}
    for stage in STAGES:
        assert f"medcode/{stage}/__init__.py" in names, stage
    assert "medcode/agent/llm/__init__.py" in names
    assert not [n for n in names if n.startswith(("medcode/tools", "tools/", "tests/")) or "/make_" in n]
    # Data files that change behaviour ship with their stage.
    for data in (
        "medcode/agent/llm/data/models.json",
        "medcode/agent/data/prompts/choose-v2.json",
        "medcode/validators/data/context_rules.json",
        "medcode/retrieval/data/synonyms.json",
        "medcode/evals/data/gold.jsonl",
        "medcode/copilot/data/static/app.js",
        # The review database's migrations run on open: a wheel without them cannot open a store.
        "medcode/review/migrations/env.py",
        "medcode/review/migrations/versions/rev_0001_initial.py",
        "medcode/review/migrations/versions/rev_0002_governance.py",
        # Earned autonomy: the example policy and the CMS-HCC list routing reads.
        "medcode/review/governance/data/autonomy_policy.toml",
        "medcode/review/governance/data/hcc_codes.json",
        "medcode/copilot/data/pages/shell.html",
        "medcode/copilot/data/pages/audit.html",
        "medcode/copilot/data/pages/autonomy.html",
        "medcode/review/migrations/versions/rev_0003_monitoring.py",
        # Thresholds, CDI query templates and the financial pins are data that ships with the stage.
        "medcode/monitoring/data/drift_thresholds.json",
        "medcode/monitoring/data/cdi_queries.json",
        "medcode/monitoring/data/financial.json",
    ):
        assert data in names, data


def test_every_data_file_of_a_stage_ships_in_the_wheel(wheel: Path) -> None:
    """A file a stage reads at run time (model, rules, prompts) is in the wheel, not only in an editable install.

    The acceptance model, the proposers' settings and the FHIR mappings (``agent/data/*.json``) were once left out:
    only ``pip install -e`` worked."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        f"medcode/{path.relative_to(ROOT).as_posix()}"
        for stage in STAGES
        for path in (ROOT / stage).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    assert "medcode/agent/data/acceptance.json" in expected
    assert [name for name in expected if name not in names] == []


def test_the_package_dir_mapping_names_every_stage_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["package-dir"] == {"medcode": "medcode", **{f"medcode.{s}": s for s in STAGES}}
    for stage in STAGES:
        assert (ROOT / stage / "__init__.py").is_file()
        assert f"medcode.{stage}" in config["packages"]


@pytest.mark.slow
def test_installs_beside_pypi_validators_and_both_import(wheel: Path, tmp_path: Path) -> None:
    """One venv with our wheel and PyPI's ``validators``: both import, and removing one leaves the other."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    subprocess.run([*pip, "install", "-q", "--no-deps", str(wheel), "validators"], check=True, capture_output=True)
    tops = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth")) and p.name != "__pycache__"}
    assert "medcode" in tops and "validators" in tops
    assert not tops & {"agent", "retrieval", "codesets", "evals", "monitoring", "copilot", "review"}
    # medcode's own dependencies come from this test environment's site-packages, appended after the venv's.
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "pydantic").is_dir())
    (site / "zz_medcode_deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    probe = (
        "import validators, medcode.validators as mv, medcode.agent, medcode.review;"
        "assert validators.email('coder@example.org') is True;"
        "assert mv.ValidatorPipeline and 'SPAN_NEGATED' in mv.RULE_IDS;"
        "print(validators.__file__); print(mv.__file__)"
    )
    out = subprocess.run(
        [str(python), "-I", "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.split()
    assert out[0].startswith(str(site / "validators")) and out[1].startswith(str(site / "medcode" / "validators"))
    subprocess.run([*pip, "uninstall", "-q", "-y", "validators"], check=True, capture_output=True)
    again = "import medcode.validators as mv; print(mv.__file__)"
    subprocess.run([str(python), "-I", "-c", again], check=True, capture_output=True, cwd=tmp_path)
    assert not (site / "validators").exists()


def test_public_surfaces_are_small_and_complete() -> None:
    """Every stage's ``__all__`` names only what it exports, and every error class is exported from the root."""
    import importlib

    import medcode.errors

    for name in ("medcode", *(f"medcode.{s}" for s in STAGES), "medcode.agent.llm"):
        module = importlib.import_module(name)
        exported = module.__all__
        assert len(exported) == len(set(exported)), name
        for attr in exported:
            assert hasattr(module, attr), f"{name}.{attr}"
    errors = {n for n, v in vars(medcode.errors).items() if isinstance(v, type) and issubclass(v, Exception)}
    assert errors == set(medcode.errors.__all__) <= set(medcode.__all__)
