"""Generation on Ray engine replicas on a real local Ray: the transformers engine (a tiny random LFM2 built
in-test) in two Ray actors gives exactly the in-process backend's answers, seeds, token counts and cache
identity, loads its model once per replica, and structured output is still validated and retried. The
vLLM replica is the same code path with VLLMClient and needs a GPU (not tested here)."""

from __future__ import annotations

import pytest

from pipelines.llm.client import LLMConfig, Request, Sampling
from pipelines.llm.factory import build_client
from pipelines.llm.ray_replicas import RayReplicasClient
from tests.llm.tiny_lfm2 import build_tiny_lfm2

ray = pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh (the ray extra)")

CHAT = ({"role": "user", "content": "How do I bake bread?"},)
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_tiny_lfm2(tmp_path_factory.mktemp("tiny-lfm2"))


def requests() -> list[Request]:
    return [
        Request(sampling=Sampling(max_tokens=6, seed=1), prompt="The quick brown"),
        Request(sampling=Sampling(max_tokens=5, seed=5), messages=CHAT, n=3),
        Request(sampling=Sampling(max_tokens=9, seed=2, temperature=0.0), prompt="What is the weather in"),
        Request(sampling=Sampling(max_tokens=7, seed=9, top_p=0.5), prompt="Persona: a nurse"),
        Request(sampling=Sampling(max_tokens=8, seed=3), prompt="JSON:", json_schema=SCHEMA),
    ]


def answers(results) -> list:
    return [[(c.text, c.tokens_in, c.tokens_out, c.finish_reason, c.extra.get("seed")) for c in r]
            if isinstance(r, list) else (type(r).__name__, r.tokens_in, r.tokens_out) for r in results]


def test_ray_replicas_answer_exactly_as_the_in_process_engine(checkpoint):
    base = {"backend": "transformers", "model": str(checkpoint), "n_threads": 1, "batch_size": 2,
            "structured_retries": 1}
    local = build_client(base)
    remote = build_client({**base, "ray_replicas": 2})
    assert isinstance(remote, RayReplicasClient) and remote.model_id == local.model_id
    try:
        got, want = remote.generate(requests()), local.generate(requests())
        assert answers(got) == answers(want)
        assert [len(r) for r in got[:4]] == [1, 3, 1, 1]
        # The gibberish model never writes valid JSON: it was retried, then reported, as in-process.
        assert type(got[4]).__name__ == "StructuredOutputError"
        assert remote.stats()["structured_retries"] == local.stats()["structured_retries"] == 1
        assert remote.stats() == local.stats()
        # Long-lived replicas: a second round is answered by the same two actors, models already loaded.
        actors = list(remote._actors)
        assert answers(remote.generate(requests()[:2])) == answers(local.generate(requests()[:2]))
        assert remote._actors == actors and len(actors) == 2
    finally:
        remote.close()
        local.close()
    assert not ray.is_initialized()  # the Ray this client started is shut down again


def test_ray_replicas_are_for_the_in_process_engines_only():
    with pytest.raises(ValueError, match="ray_replicas runs the in-process engines"):
        LLMConfig(backend="llama_cpp", ray_replicas=2)
