"""The OpenAI-compatible backend against a real `python -m llama_cpp.server` on the embedded GGUF, directly
and through a fault-injecting proxy (429 with Retry-After, 500, 400, 401, connection resets, slow answers).

Token budgets are tiny and the server runs on one thread, so each request takes a fraction of a second.
"""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from pipelines.llm.cache import CachedClient, cache_report
from pipelines.llm.client import LLMConfig, Request, Sampling
from pipelines.llm.errors import (AuthError, BudgetExceeded, RequestRejected, RetriesExhausted,
                                  ServerUnreachable, StructuredOutputError)
from pipelines.llm.local_server import free_port
from pipelines.llm.openai_compat import OpenAICompatClient
from tests.llm.fault_proxy import FaultProxy

FEW_SHOT = "Q: What is the capital of France?\nA: Paris\nQ: What is the capital of Japan?\nA:"
PERSON = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def client(base_url: str, **overrides) -> OpenAICompatClient:
    cfg = {"backend": "openai", "base_url": base_url, "model": "embedded-gemma-270m", "structured_output": "json_object",
           "max_retries": 3, "retry_backoff_s": 0.05, "timeout_s": 30.0, "concurrency": 4, **overrides}
    return OpenAICompatClient(LLMConfig(**cfg))


def prompts(k: int, max_tokens: int = 4) -> list[Request]:
    return [Request(sampling=Sampling(temperature=0.7, max_tokens=max_tokens, seed=100 + i, stop=("\n",)),
                    prompt=f"Q: Name a colour, number {i}.\nA:") for i in range(k)]


def test_completion_and_chat_against_the_real_server(llama_server):
    c = client(llama_server)
    [done] = c.complete(FEW_SHOT, sampling=Sampling(temperature=0.0, max_tokens=6, stop=("\n",)))
    assert "Tokyo" in done.text
    assert done.tokens_in > 10 and 1 <= done.tokens_out <= 6 and done.extra["seed"] == 0
    [reply] = c.chat([{"role": "user", "content": "Say hello."}], sampling=Sampling(max_tokens=6, seed=1))
    assert reply.tokens_in > 3 and reply.tokens_out >= 1 and isinstance(reply.text, str)
    three = c.complete(FEW_SHOT, sampling=Sampling(max_tokens=3, seed=7), n=3)
    assert [x.extra["seed"] for x in three] == [7, 8, 9]  # n is a batch of seeds, as on every backend
    assert c.model_id == "openai:embedded-gemma-270m"
    c.close()


def test_chat_json_schema_is_constrained_and_validated(llama_server):
    c = client(llama_server)
    [out] = c.chat([{"role": "user", "content": "Describe a person as JSON with name and age."}],
                   sampling=Sampling(max_tokens=64, seed=2), json_schema=PERSON)
    jsonschema.validate(out.parsed, PERSON)
    # Unconstrained (structured_output: none) on a base model: validated, retried, then a clear error.
    loose = client(llama_server, structured_output="none", structured_retries=1)
    with pytest.raises(StructuredOutputError) as err:
        loose.complete("The weather today is", sampling=Sampling(max_tokens=4, seed=3), json_schema=PERSON)
    assert "after 2 attempts" in err.value.reason and err.value.tokens_out > 0
    assert loose.stats()["structured_retries"] == 1
    c.close()
    loose.close()


def _scripted(body: bytes, attempt: int) -> str | None:
    """Every request meets a different sequence of faults (at most 2), then gets through."""
    seed = json.loads(body)["seed"]
    script = [["429"], ["500", "reset"], [], ["reset"], ["slow", "429"], ["500"]][seed % 6]
    return script[attempt] if attempt < len(script) else None


def test_batch_survives_faults_without_losing_or_duplicating(llama_server, server_port, tmp_path):
    with FaultProxy(server_port, plan=_scripted, slow_s=0.2, retry_after_s=0.1) as proxy:
        cached = CachedClient(client(proxy.base_url), tmp_path / "cache.sqlite")
        reqs = prompts(12)
        results = cached.generate(reqs)
        assert all(isinstance(r, list) and len(r) == 1 for r in results)
        # Results come back in request order, each from its own request.
        assert [r[0].extra["seed"] for r in results] == [100 + i for i in range(12)]
        # Every request's real answer reached the client exactly once.
        answered = proxy.answered()
        assert len(answered) == 12 and set(answered.values()) == {1}
        faults = proxy.faults()
        stats = cached.stats()
        assert stats["retries"] == faults["429"] + faults["500"] + faults["reset"] > 0
        assert stats["retries_http_429"] == faults["429"] and stats["retries_http_500"] == faults["500"]
        assert stats["retries_reset"] == faults["reset"]
        assert stats["model_calls"] == 12 and stats["failures"] == 0 and stats["tokens_out"] > 0
        # Asking again is answered from the cache: nothing reaches the proxy.
        before = len(proxy.log)
        again = cached.generate(reqs)
        assert [r[0].text for r in again] == [r[0].text for r in results] and all(r[0].cached for r in again)
        assert len(proxy.log) == before
        cached.close()
    assert cache_report(tmp_path / "cache.sqlite")["prompts_sent_twice"] == 0


def test_timeouts_are_retried(llama_server, server_port):
    first_slow = lambda body, attempt: "slow" if attempt == 0 else None  # noqa: E731
    # The held-back first attempt times out; the retry gets through. (>= 1: on a loaded machine the real
    # answer itself may once exceed the timeout, which is retried the same way.)
    with FaultProxy(server_port, plan=first_slow, slow_s=6.0) as proxy:
        c = client(proxy.base_url, timeout_s=3.0)
        [out] = c.complete("Q: Say yes.\nA:", sampling=Sampling(max_tokens=2, seed=5))
        assert out.tokens_out >= 1 and c.stats()["retries_timeout"] >= 1
        c.close()


def test_retry_after_is_honoured(llama_server, server_port):
    once = lambda body, attempt: "429" if attempt == 0 else None  # noqa: E731
    with FaultProxy(server_port, plan=once, retry_after_s=1.0) as proxy:
        c = client(proxy.base_url, retry_backoff_s=0.01)
        t0 = time.monotonic()
        c.complete("Q: Say yes.\nA:", sampling=Sampling(max_tokens=2, seed=6))
        assert time.monotonic() - t0 >= 1.0  # waited the server's Retry-After, not the 10 ms backoff
        c.close()


def test_retries_are_bounded(llama_server, server_port):
    with FaultProxy(server_port, plan=lambda body, attempt: "500") as proxy:
        c = client(proxy.base_url, max_retries=2)
        with pytest.raises(RetriesExhausted, match="gave up after 3 attempts; last error: HTTP 500"):
            c.complete("Q: Say yes.\nA:", sampling=Sampling(max_tokens=2))
        assert len(proxy.log) == 3 and c.stats()["retries_http_500"] == 2
        c.close()


def test_a_rejected_request_is_a_per_request_failure(llama_server, server_port, tmp_path):
    reject_seed_101 = lambda body, attempt: "400" if json.loads(body)["seed"] == 101 else None  # noqa: E731
    with FaultProxy(server_port, plan=reject_seed_101) as proxy:
        cached = CachedClient(client(proxy.base_url), tmp_path / "c.sqlite")
        results = cached.generate(prompts(3))
        assert isinstance(results[1], RequestRejected) and "HTTP 400" in results[1].reason
        assert isinstance(results[0], list) and isinstance(results[2], list)
        stats = cached.stats()
        assert stats["failures"] == 1 and stats["failures_request_rejected"] == 1
        assert len(proxy.log) == 3  # a 400 is not retried
        cached.close()


def test_server_down_gives_a_clear_error():
    port = free_port()
    c = client(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(ServerUnreachable) as err:
        c.complete("hello", sampling=Sampling(max_tokens=2))
    assert str(err.value).startswith(f"cannot reach http://127.0.0.1:{port}/v1: connection refused")
    c.close()


def test_api_key_comes_from_the_environment_and_is_never_written(llama_server, server_port, tmp_path,
                                                                  monkeypatch):
    secret = "sk-test-" + "x7" * 12
    monkeypatch.setenv("REFINERY_TEST_KEY", secret)
    with FaultProxy(server_port, api_key=secret) as proxy:
        cached = CachedClient(client(proxy.base_url, api_key_env="REFINERY_TEST_KEY"), tmp_path / "c.sqlite")
        cached.complete("Q: Say yes.\nA:", sampling=Sampling(max_tokens=2))
        assert secret not in repr(cached.backend) and secret not in str(cached.backend.config.model_dump())
        cached.close()
        monkeypatch.setenv("REFINERY_TEST_KEY", "sk-wrong")
        wrong = client(proxy.base_url, api_key_env="REFINERY_TEST_KEY")
        with pytest.raises(AuthError) as err:
            wrong.complete("Q: Say no.\nA:", sampling=Sampling(max_tokens=2))
        assert "HTTP 401" in str(err.value) and "sk-wrong" not in str(err.value)
        wrong.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    monkeypatch.delenv("REFINERY_TEST_KEY")
    with pytest.raises(ValueError, match="REFINERY_TEST_KEY .* is not set"):
        client(llama_server, api_key_env="REFINERY_TEST_KEY")
    with pytest.raises(ValueError, match="must name an environment variable"):
        LLMConfig(backend="openai", base_url=llama_server, api_key_env=secret)


def test_budget_is_shared_by_every_client_of_a_run_directory(llama_server, server_port, tmp_path):
    path = tmp_path / "llm_cache.sqlite"
    with FaultProxy(server_port) as proxy:
        first = CachedClient(client(proxy.base_url, concurrency=1, max_total_tokens=60), path)
        with pytest.raises(BudgetExceeded, match="token budget spent"):
            first.generate(prompts(40, max_tokens=4))
        sent = len(proxy.log)
        assert 1 <= sent < 40  # stopped early; what was answered is cached
        spent = first.budget.tokens
        assert 60 <= spent <= 60 + 40  # overshoot bounded by the one request in flight
        # A second client (another worker process, in a real run) sees the same spent budget.
        second = CachedClient(client(proxy.base_url, max_total_tokens=60), path)
        with pytest.raises(BudgetExceeded):
            second.generate(prompts(45, max_tokens=4)[40:])
        assert len(proxy.log) == sent  # refused before sending anything
        # A larger budget resumes: the answers already paid for come from the cache.
        bigger = CachedClient(client(proxy.base_url, max_total_tokens=100_000), path)
        results = bigger.generate(prompts(40, max_tokens=4))
        assert sum(r[0].cached for r in results) == sent and len(proxy.log) == 40
        for c in (first, second, bigger):
            c.close()
