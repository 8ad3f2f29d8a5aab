"""The ``medcode`` command line. Each stage registers its own sub-commands.

Exit codes: 0 success, 1 a failure (or, for ``validate``/``regress``, a negative verdict),
2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from medcode import __version__
from medcode._input import describe_validation_error
from medcode.config import Settings, load_settings
from medcode.errors import ConfigError, InputError, MedcodeError

if TYPE_CHECKING:
    from medcode.agent import AutonomyGate, Recorder, RoutingCheck

__all__ = ["CommandContext", "main", "print_json"]

Handler = Callable[[argparse.Namespace, "CommandContext"], int]


class CommandContext:
    """What a command handler gets besides its arguments: lazily loaded settings, and the wiring
    between stages that only the CLI root may do (a stage never imports a later one)."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self._overrides)
        return self._settings

    def recorder(self) -> Recorder:
        """The review stage's recorder (queue + audit log) for ``medcode code`` and ``code-batch``."""
        from medcode.review import QueueRecorder

        return QueueRecorder(self.settings)

    def autonomy(self, *, create: bool = True) -> AutonomyGate:
        """The governance room's earned-autonomy gate for routing (grants by case type).

        ``create=False`` (``--no-record``) opens an existing review database only; without one
        no case type holds a grant, so every note is reviewed.
        """
        from medcode.review.governance import AutonomyLedger

        return AutonomyLedger(self.settings, create=create)

    def routing_checks(self) -> list[RoutingCheck]:
        """Checks that add routing reasons: monitoring's financial impact (a code that moves the MS-DRG or adds
        a CMS-HCC is never auto), unless ``monitoring_financial_routing`` is off."""
        if not self.settings.monitoring_financial_routing:
            return []
        from medcode.monitoring import FinancialImpactCheck

        return [FinancialImpactCheck(self.settings)]


def print_json(payload: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


def _registrars() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    """Stage CLIs, in pipeline order. Each module must import its heavy parts lazily."""
    from medcode.codesets import cli as codesets_cli

    registrars: list[Callable[[argparse._SubParsersAction], None]] = [codesets_cli.register]  # type: ignore[type-arg]
    for module_name in (
        "medcode.retrieval.cli",
        "medcode.agent.cli",
        "medcode.agent.llm.cli",
        "medcode.agent.validate_cli",
        "medcode.review.cli",
        "medcode.review.governance.cli",
        "medcode.evals.cli",
        "medcode.evals.train_cli",
        "medcode.monitoring.cli",
        "medcode.copilot.cli",
    ):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # stage not present in this build
            raise
        registrars.append(module.register)
    return registrars


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medcode",
        description="Propose ICD-10-CM codes for clinical notes, with cited evidence and deterministic guardrails.",
    )
    parser.add_argument("--version", action="version", version=f"medcode {__version__}")
    parser.add_argument("--data-dir", help="data directory (default: $MEDCODE_DATA_DIR or ~/.cache/medcode)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (never note text)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    try:
        return handler(args, CommandContext(overrides))
    except (InputError, ConfigError) as exc:
        print(f"medcode: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a model built from user input that a command did not check first
        print(f"medcode: error: invalid input ({describe_validation_error(exc)})", file=sys.stderr)
        return 2
    except RecursionError:
        print("medcode: error: input nested too deeply", file=sys.stderr)
        return 2
    except MedcodeError as exc:
        print(f"medcode: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("medcode: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
