"""filter.decontaminate against the real benchmark files (GSM8K test, BFCL questions)."""

from __future__ import annotations

import json
import random

from filters.normalize import normalize_text
from pipelines.core.sample import Message, Sample
from tests.filters.conftest import make_step
from tests.filters.data import bfcl_samples, gsm8k


def chat(user: str, assistant: str = "Let me work through it step by step.") -> Sample:
    return Sample(kind="chat", messages=[Message("user", user), Message("assistant", assistant)])


def test_gsm8k_test_questions_pasted_into_samples_are_flagged(tmp_path):
    step = make_step("filter.decontaminate", tmp_path)
    rng = random.Random(0)
    rows = gsm8k("test")
    for i, row in enumerate(rows):
        q = row["question"]
        wrapped = [f"Solve this for me: {q} Please show your work.",  # pasted in a prompt
                   q.upper().replace(".", " . "),                      # case and spacing do not hide it
                   ][i % 2]
        s = chat(wrapped) if i % 3 else chat("Here is a practice problem.", f"Sure! {q} The answer follows.")
        v = step.keep(s)
        assert not v.keep and v.reason == "contaminated", (i, q)
        assert v.details["benchmark"] == "test.jsonl" and v.details["coverage"] >= 0.5
    # Half a question pasted still counts at the default coverage; a few shared words do not.
    q = rows[rng.randrange(len(rows))]["question"].split()
    assert not step.keep(chat(" ".join(q[: len(q) * 3 // 5]))).keep
    assert step.keep(chat("How many eggs does a duck lay in a day on a farm in spring?")).keep


def test_bfcl_questions_are_flagged_and_named(tmp_path):
    step = make_step("filter.decontaminate", tmp_path)
    for qid, s in bfcl_samples()[::50]:
        question = s.messages[0].content
        v = step.keep(chat(f"Quick one: {question}"))
        assert not v.keep and v.details["benchmark"].startswith("BFCL_v4_") and v.details["coverage"] == 1.0
        # BFCL repeats some questions across categories: the match is this question, under this id or another.
        assert v.details["id"] == qid or normalize_text(v.details["question"]) == normalize_text(question)


def test_clean_generated_data_passes(tmp_path):
    step = make_step("filter.decontaminate", tmp_path)
    train = gsm8k("train")[:300]  # the train split is not a benchmark (two train questions are templates of
    kept = sum(step.keep(chat(r["question"], r["answer"])).keep for r in train)  # test ones; see docs)
    assert kept >= 298


def test_configurable_files_fields_and_coverage(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "b1", "problem": "Alpha beta gamma delta epsilon zeta eta theta iota kappa"}) + "\n")
    step = make_step("filter.decontaminate", tmp_path, files=[str(bench)], fields=["problem"], ngram=4, min_coverage=0.9)
    v = step.keep(chat("alpha beta gamma delta epsilon zeta eta theta iota kappa!"))
    assert not v.keep and v.details["id"] == "b1" and v.details["coverage"] == 1.0
    assert step.keep(chat("alpha beta gamma delta epsilon zeta eta")).keep  # coverage 4/7 < 0.9
