"""The transformers backend on a tiny random LFM2 built in-test: batching, per-row seeds, token counts, n,
structured-output retries, and the request cache in front. The text is gibberish by construction."""

from __future__ import annotations

import pytest

from pipelines.llm.cache import CachedClient
from pipelines.llm.client import LLMConfig, Request, Sampling
from pipelines.llm.errors import StructuredOutputError
from pipelines.llm.transformers_backend import TransformersClient
from tests.llm.tiny_lfm2 import build_tiny_lfm2

CHAT = ({"role": "user", "content": "How do I bake bread?"},)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_tiny_lfm2(tmp_path_factory.mktemp("tiny-lfm2"))


@pytest.fixture(scope="module")
def client(checkpoint):
    c = TransformersClient(LLMConfig(backend="transformers", model=str(checkpoint), n_threads=1, batch_size=3,
                                     structured_retries=2))
    yield c
    c.close()


def test_batch_of_mixed_requests(client):
    reqs = [
        Request(sampling=Sampling(max_tokens=6, seed=1), prompt="The quick brown"),
        Request(sampling=Sampling(max_tokens=4, seed=5), messages=CHAT, n=3),
        Request(sampling=Sampling(max_tokens=9, seed=2, temperature=0.0), prompt="What is the weather in"),
        Request(sampling=Sampling(max_tokens=5, seed=9, top_p=0.5), prompt="Persona: a nurse"),
    ]
    results = client.generate(reqs)
    assert [len(r) for r in results] == [1, 3, 1, 1]
    tok = client._tok
    for req, res in zip(reqs, results):
        for c in res:
            assert 1 <= c.tokens_out <= req.sampling.max_tokens and c.finish_reason in ("stop", "length")
            assert c.latency_s > 0
    # tokens_in is the prompt without padding, whatever the batch's longest row was.
    assert results[0][0].tokens_in == len(tok("The quick brown")["input_ids"])
    chat_prompt = tok.apply_chat_template(list(CHAT), tokenize=False, add_generation_prompt=True)
    assert results[1][0].tokens_in == len(tok(chat_prompt, add_special_tokens=False)["input_ids"])
    assert [c.extra["seed"] for c in results[1]] == [5, 6, 7]  # n is a batch of consecutive seeds
    assert len({c.text for c in results[1]}) == 3


def test_a_completion_depends_on_its_seed_not_on_its_batch(client):
    s = Sampling(max_tokens=8, seed=11, temperature=1.0)
    [alone] = client.complete("The quick brown", sampling=s)
    batch = client.generate([Request(sampling=Sampling(max_tokens=3, seed=4), prompt="Numbers 0 1 2 and more"),
                             Request(sampling=s, prompt="The quick brown"),
                             Request(sampling=Sampling(max_tokens=8, seed=12), prompt="The quick brown")])
    assert batch[1][0].text == alone.text
    assert batch[2][0].text != alone.text
    greedy = Sampling(max_tokens=6, temperature=0.0, seed=1)
    assert client.complete("What is", sampling=greedy)[0].text == \
        client.complete("What is", sampling=Sampling(max_tokens=6, temperature=0.0, seed=2))[0].text


def test_structured_output_is_retried_then_reported(client):
    before = client.stats().get("structured_retries", 0)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    [result] = client.generate([Request(sampling=Sampling(max_tokens=4, seed=3), prompt="JSON:", json_schema=schema)])
    assert isinstance(result, StructuredOutputError)
    assert "after 3 attempts" in result.reason and result.tokens_out > 0 and result.text
    assert client.stats()["structured_retries"] - before == 2
    with pytest.raises(StructuredOutputError):
        client.complete("JSON:", sampling=Sampling(max_tokens=4, seed=3), json_schema=schema)


def test_cache_in_front(client, tmp_path):
    class Shared:  # lend the module's model without letting the cache close it
        model_id, generate, stats, config = client.model_id, client.generate, client.stats, client.config

        def close(self):
            pass

    cached = CachedClient(Shared(), tmp_path / "c.sqlite")
    reqs = [Request(sampling=Sampling(max_tokens=4, seed=i), prompt="The quick brown") for i in range(4)]
    first = cached.generate(reqs)
    again = cached.generate(reqs)
    assert [r[0].text for r in again] == [r[0].text for r in first] and all(r[0].cached for r in again)
    stats = cached.stats()
    assert stats["model_calls"] == 4 and stats["cache_hits"] == 4 and stats["tokens_out"] > 0
    cached.close()


def test_config_refuses_the_gguf_and_missing_folders(tmp_path):
    with pytest.raises(ValueError, match="needs model: a checkpoint folder"):
        LLMConfig(backend="transformers")
    with pytest.raises(FileNotFoundError, match="no downloads at run time"):
        TransformersClient(LLMConfig(backend="transformers", model=str(tmp_path / "nope")))
