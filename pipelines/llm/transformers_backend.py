"""Local checkpoints (LFM2 and others) through transformers, batched, on CPU or GPU.

Prompts are left-padded and generated `batch_size` at a time. Sampling is per row and seeded per row:
a logits processor applies temperature and top-p, then adds Gumbel noise drawn from the row's own
generator (seeded with the request's seed), and generation runs greedy, so argmax picks a sample of the
row's distribution (the Gumbel-max trick). A completion therefore depends on its own prompt and seed, not
on which other requests shared its batch (up to the last bits of padded matmuls), which plain
`do_sample=True` on a shared global RNG cannot give. Different max_tokens and stop strings per row are
handled by cutting each row after generation.

No downloads: `model` is a local folder (or a hub name already in the local Hugging Face cache).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from pipelines.llm.batch_backend import BatchBackend, Item
from pipelines.llm.client import Completion, LLMConfig

_EDGE = 4 << 20  # bytes hashed at each end of a weight file for its identity


def checkpoint_id(path: Path) -> str:
    """A cheap identity of a checkpoint folder: config, tokenizer files, and each weight file's size and ends.

    Hashing whole weight files would cost seconds per GB in every worker; the ends plus the size change
    whenever the weights do, in practice.
    """
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(f.name.encode())
        if f.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            size = f.stat().st_size
            h.update(str(size).encode())
            with f.open("rb") as fh:
                h.update(fh.read(_EDGE))
                fh.seek(max(0, size - _EDGE))
                h.update(fh.read(_EDGE))
        elif f.suffix in (".json", ".jinja", ".txt", ".model", ".py"):
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def resolve_checkpoint(model: str) -> Path:
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:  # a hub name counts only if it is already in the local cache: no downloads at run time
        return Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # huggingface_hub raises several types for "not in the cache"
        raise FileNotFoundError(f"model {model!r} is neither a checkpoint folder nor in the local Hugging Face "
                                f"cache (no downloads at run time): {exc}") from None


def _sampler(seeds: list[int], temperatures: list[float], top_ps: list[float], device: Any) -> Any:
    import torch
    from transformers import LogitsProcessor

    class SeededGumbel(LogitsProcessor):
        def __init__(self) -> None:
            self.gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            scores = scores.float()
            out = torch.empty_like(scores)
            for row, (gen, t, p) in enumerate(zip(self.gens, temperatures, top_ps)):
                s = scores[row]
                # One draw per step for every row, greedy or not, so a row's noise depends only on its seed.
                u = torch.rand(s.shape[-1], generator=gen).to(s.device).clamp_(1e-20, 1.0 - 1e-7)
                if t == 0:
                    out[row] = s
                    continue
                s = s / t
                if p < 1.0:
                    sorted_s, idx = torch.sort(s, descending=True)
                    cum = torch.softmax(sorted_s, -1).cumsum(-1)
                    cut = cum - torch.softmax(sorted_s, -1) >= p  # keep the smallest set reaching p
                    s = s.scatter(0, idx[cut], float("-inf"))
                out[row] = s - torch.log(-torch.log(u))
            return out

    return SeededGumbel()


class TransformersClient(BatchBackend):
    def __init__(self, config: LLMConfig) -> None:
        super().__init__(config)
        self.path = resolve_checkpoint(config.model)
        self.model_id = f"transformers:{self.path.name}:{checkpoint_id(self.path)}"
        self.chunk = config.batch_size
        self._model: Any = None
        self._tok: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from pipelines.llm.llama_cpp import default_n_threads

            torch.set_num_threads(self.config.n_threads or default_n_threads())
            device = self.config.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            tok.padding_side = "left"  # generation continues at the right edge of every row
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            dtype = self.config.dtype if self.config.dtype != "auto" else "auto"
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype, local_files_only=True)
            self._model, self._tok, self.device = model.to(device).eval(), tok, device
        return self._model, self._tok

    def _run(self, items: list[Item]) -> list[Completion]:
        model, tok = self._load()
        out: list[Completion | None] = [None] * len(items)
        prompts = [self.render(tok, it.request) for it in items]
        # Similar lengths share a batch: less padding, fewer wasted positions.
        order = sorted(range(len(items)), key=lambda k: len(prompts[k]))
        for start in range(0, len(order), self.config.batch_size):
            ks = order[start:start + self.config.batch_size]
            for k, c in zip(ks, self._batch([items[k] for k in ks], [prompts[k] for k in ks], model, tok)):
                out[k] = c
        return out  # type: ignore[return-value]

    def _batch(self, items: list[Item], prompts: list[str], model: Any, tok: Any) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        # Chat templates already hold the BOS token; completion prompts get the tokenizer's usual specials.
        rows = [tok(p, add_special_tokens=it.request.prompt is not None)["input_ids"] for p, it in zip(prompts, items)]
        enc = tok.pad({"input_ids": rows}, return_tensors="pt").to(self.device)
        samplings = [it.request.sampling for it in items]
        gen_cfg = GenerationConfig(max_new_tokens=max(s.max_tokens for s in samplings), do_sample=False,
                                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        sampler = _sampler([it.seed for it in items], [s.temperature for s in samplings],
                           [s.top_p for s in samplings], self.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            ids = model.generate(**enc, generation_config=gen_cfg, logits_processor=LogitsProcessorList([sampler]))
        share = (time.perf_counter() - t0) / len(items)
        width = enc["input_ids"].shape[1]
        keep_special = self.config.output_parser == "lfm2"  # tool-call markers are special tokens
        results = []
        for row, (it, s) in enumerate(zip(items, samplings)):
            gen = ids[row, width:].tolist()
            finish = "length"
            if tok.eos_token_id in gen[: s.max_tokens]:
                gen, finish = gen[: gen.index(tok.eos_token_id)], "stop"
            else:
                gen = gen[: s.max_tokens]
            text = tok.decode(gen, skip_special_tokens=not keep_special)
            cut = [text.find(stop) for stop in s.stop if stop and stop in text]
            if cut:
                text, finish = text[: min(cut)], "stop"
                # Tokens generated up to the stop string (the row went on, but those tokens are discarded).
                gen = next((gen[:k] for k in range(1, len(gen) + 1)
                            if len(tok.decode(gen[:k], skip_special_tokens=not keep_special)) > len(text)), gen)
            results.append(Completion(text=text, tokens_in=int(enc["attention_mask"][row].sum()),
                                      tokens_out=len(gen), latency_s=share, finish_reason=finish))
        return results

    def close(self) -> None:
        self._model = self._tok = None

