"""`refinery train sft|dpo CONFIG [key=value ...]` and `refinery train init-tiny PATH`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def _fail(message: str, code: int = 2) -> None:
    print(message, file=sys.stderr)
    raise typer.Exit(code)


def _run(method: str, config: Path, overrides: list[str]) -> None:
    from pipelines.core.errors import RecipeError
    from pipelines.export.registry import DatasetNotFound
    from pipelines.train.config import as_dict, load_config

    try:
        cfg = load_config(method, config, overrides)
    except RecipeError as e:
        _fail("\n".join(str(p) for p in e.problems))
    print(f"refinery train {method}: " + json.dumps(as_dict(cfg)), file=sys.stderr)  # the resolved config
    if method == "sft":
        from pipelines.train.sft import train_sft as train
    else:
        from pipelines.train.dpo import train_dpo as train
    try:
        summary = train(cfg)
    except (DatasetNotFound, FileNotFoundError, ValueError) as e:
        _fail(f"refinery train {method}: {e}")
    print(json.dumps(summary), file=sys.stderr)
    print(cfg.output_dir)


def register(app: typer.Typer) -> None:
    from pipelines.train.config import DPORunConfig, SFTRunConfig, describe

    train = typer.Typer(help="Train LFM2 checkpoints on exported dataset versions (TRL SFT and DPO).",
                        no_args_is_help=True)

    @train.command("sft", help="Supervised fine-tuning, loss on assistant turns only. Config keys:\n\n"
                               + describe(SFTRunConfig))
    def sft(
        config: Annotated[Path, typer.Argument(help="train config YAML (e.g. recipes/train/lfm2_sft_tiny.yaml)")],
        overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. max_steps=10")] = None,
    ) -> None:
        _run("sft", config, overrides or [])

    @train.command("dpo", help="Direct preference optimisation on chosen/rejected pairs. Config keys:\n\n"
                               + describe(DPORunConfig))
    def dpo(
        config: Annotated[Path, typer.Argument(help="train config YAML (e.g. recipes/train/lfm2_dpo_tiny.yaml)")],
        overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. beta=0.2")] = None,
    ) -> None:
        _run("dpo", config, overrides or [])

    @train.command("init-tiny")
    def init_tiny(
        path: Annotated[Path, typer.Argument(help="folder to create")],
        seed: Annotated[int, typer.Option(help="weight initialisation seed")] = 0,
        chat_format: Annotated[str, typer.Option(help="chat template to ship: lfm2 or lfm2.5")] = "lfm2",
    ) -> None:
        """Build a tiny random LFM2 checkpoint + tokenizer (for smoke tests and CI; it has learned nothing)."""
        from pipelines.train.tiny import init_tiny as build

        if (path / "config.json").exists():
            _fail(f"{path} already holds a checkpoint")
        if chat_format not in ("lfm2", "lfm2.5"):
            _fail(f"--chat-format: expected lfm2 or lfm2.5, got {chat_format!r}")
        print(build(path, seed=seed, chat_format=chat_format))

    app.add_typer(train, name="train")
