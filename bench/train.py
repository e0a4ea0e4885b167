"""Training throughput: the Refinery SFT trainer against a plain TRL script, same data, same model.

    .venv/bin/python bench/train.py                          # tiny LFM2, 128 conversations, one epoch
    .venv/bin/python bench/train.py --n 1024 --hidden 512
    .venv/bin/python bench/train.py --model smollm2-135m --n 32 --batch 4   # the named student
    .venv/bin/python bench/train.py --packing                # ours with padding-free packed batches

Both train the same model (a freshly initialised tiny LFM2, conv + attention blocks, head_dim 64; or the
SmolLM2-135M student, taught the LFM2 tokens) for one epoch on the same multi-turn conversations of very
different lengths, loss on assistant turns:
- ours: `refinery train sft` with its defaults (pre-tokenized by our LFM2 renderer; padded batches of similar
  lengths), or with `--packing` (padding-free rows with sequence-aware short convolutions);
- TRL:  `SFTTrainer` on the conversational rows with TRL's LFM2 template and `assistant_only_loss=True`
  (padded batches in random order, TRL's default).
tokens/s = non-padding tokens trained (TRL's own count, identical for both) / wall time of `trainer.train()`.

Last line: {"ours_tokens_per_s": ..., "trl_tokens_per_s": ..., "ratio": ...}
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.core.sample import Message, Sample  # noqa: E402
from pipelines.export.builder import ExportOptions, VersionBuilder  # noqa: E402
from pipelines.export.registry import Registry  # noqa: E402
from pipelines.export.writer import write_version  # noqa: E402

WORDS = ("data model train token answer question reason tool call persona sample filter review export dataset "
         "version small fast local city river market garden music coffee bridge winter summer light stone "
         "water paper window forest engine signal morning evening travel kitchen letter").split()


def conversations(n: int, seed: int = 0) -> list[Sample]:
    """Multi-turn chats whose lengths vary ~20x, as real SFT data does (short answers next to long ones)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        messages = []
        for turn in range(rng.randint(1, 4)):
            messages.append(Message("user", f"#{i}.{turn} " + " ".join(rng.choices(WORDS, k=rng.randint(4, 30))) + "?"))
            messages.append(Message("assistant", " ".join(rng.choices(WORDS, k=int(rng.paretovariate(1.2) * 12)))[:1500]))
        out.append(Sample(kind="chat", messages=messages, persona={"id": f"p{i % 50}"},
                          provenance={"generator": "bench"}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=128, help="conversations")
    ap.add_argument("--hidden", type=int, default=256, help="hidden size of the tiny LFM2 (multiple of 64)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--model", default="tiny", help="tiny (random LFM2) or a named student (smollm2-135m)")
    ap.add_argument("--packing", action="store_true", help="ours with padding-free packed batches")
    args = ap.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from pipelines.formats.trl import decode_row
    from pipelines.train.config import SFTRunConfig
    from pipelines.train.data import load_version
    from pipelines.train.model import add_lfm2_tokens
    from pipelines.train.sft import train_sft
    from pipelines.train.students import student_path
    from pipelines.train.templates import chat_template
    from pipelines.train.tiny import build_model, build_tokenizer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        registry = Registry(tmp / "datasets")
        builder = VersionBuilder(ExportOptions(name="bench", validation=0.0, text=None))
        for s in conversations(args.n):
            builder.add(s)
        write_version(registry, builder, {"recipe": "bench/train.py"}, [])
        if args.model == "tiny":
            model_dir = tmp / "tiny"
            tokenizer = build_tokenizer()
            build_model(tokenizer, hidden_size=args.hidden, layer_types=[
                "conv", "conv", "full_attention", "conv", "conv", "full_attention"]).save_pretrained(model_dir)
            tokenizer.save_pretrained(model_dir)
        else:
            model_dir = student_path(args.model)

        common = dict(learning_rate=1e-3, num_train_epochs=1.0, per_device_train_batch_size=args.batch,
                      logging_steps=1000, save_steps=100_000, seed=0)
        ours = train_sft(SFTRunConfig(model=str(model_dir), dataset="bench@v1", registry=str(registry.root),
                                      output_dir=str(tmp / "ours"), max_length=4096, packing=args.packing, **common))

        rows = load_version("bench@v1", "sft", str(registry.root)).rows["train"]
        dataset = Dataset.from_list([{"messages": decode_row({"messages": r["messages"]})["messages"]} for r in rows])
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        model.config.use_cache = False
        if model.config.model_type != "lfm2":  # what a TRL user must do too: the LFM2 tokens, a template
            add_lfm2_tokens(model, tok)        # with generation spans for assistant_only_loss
            tok.chat_template = chat_template("lfm2")
        trainer = SFTTrainer(model=model, train_dataset=dataset, processing_class=tok, args=SFTConfig(
            output_dir=str(tmp / "trl"), max_length=4096, assistant_only_loss=True, report_to="none",
            use_cpu=not torch.cuda.is_available(), save_strategy="no", disable_tqdm=True, **{
                k: v for k, v in common.items() if k != "save_steps"}))
        started = time.perf_counter()
        trainer.train()
        trl_seconds = time.perf_counter() - started
        trl_tokens = int(trainer._total_train_tokens)

    trl_tps = trl_tokens / trl_seconds
    print(json.dumps({"model": args.model, "packing": args.packing, "conversations": args.n, "hidden": args.hidden, "ours_tokens": ours["tokens"],
                      "trl_tokens": trl_tokens, "ours_seconds": ours["seconds"], "trl_seconds": round(trl_seconds, 2),
                      "ours_final_loss": ours["last_logged_loss"]}), file=sys.stderr)
    print(json.dumps({"ours_tokens_per_s": round(ours["tokens_per_s"], 1), "trl_tokens_per_s": round(trl_tps, 1),
                      "ratio": round(ours["tokens_per_s"] / trl_tps, 3)}))


if __name__ == "__main__":
    main()
