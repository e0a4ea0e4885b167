"""pipelines.evals.suites: held out by construction, deterministic, and the irrelevance set is irrelevant."""

import pytest

from pipelines.evals.suites import SUITES, _function_words, _words, held_out_report, load_suite
from pipelines.tools.catalog import bfcl_held_out, load_catalog
from pipelines.tools.schema import tool_name


def test_tool_items_use_only_eval_only_functions_and_training_never_sees_them():
    items = [i for s in ("bfcl_simple", "bfcl_multiple", "bfcl_parallel", "bfcl_parallel_multiple", "irrelevance")
             for i in load_suite(s)]
    assert all(bfcl_held_out(t["name"]) for i in items for t in i.tools)
    training = [tool_name(t) for t in load_catalog(("bfcl",)).tools]
    assert training and not any(bfcl_held_out(n) for n in training)
    assert held_out_report(items)["function_names_in_training_catalog"] == []
    report = held_out_report(items[:3], [items[0].question, "something else entirely"])
    assert report["questions_with_13gram_in_training"] == ([items[0].id] if len(items[0].question.split()) >= 13 else [])


def test_suites_are_fixed_prefixes():
    for suite in SUITES:
        assert [i.id for i in load_suite(suite, limit=5)] == [i.id for i in load_suite(suite)[:5]]
    assert len({i.id for i in load_suite("bfcl_simple")}) == len(load_suite("bfcl_simple")) > 100


def test_irrelevance_offers_a_function_that_shares_no_word_with_the_question():
    items = load_suite("irrelevance")
    assert len(items) > 100 and all(i.expected == [] for i in items)
    assert all(not _words(i.question) & _function_words(i.tools[0]) for i in items)


def test_unknown_suite_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown eval suite 'bfcl'; known: bfcl_simple"):
        load_suite("bfcl")
