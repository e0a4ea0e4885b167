"""Our LFM2 rendering equals TRL's LFM2 chat templates token for token, its loss mask equals the template's
`{% generation %}` mask, and parsing the rendering gives the conversation back."""

import pytest

from pipelines.formats.chat_formats import lay_out
from pipelines.formats.lfm2 import LFM2FormatError, lfm2_view, parse_assistant, parse_conversation, render
from pipelines.formats.messages import to_trl_message
from pipelines.formats.pythonic_calls import ToolCallFormatError
from pipelines.train.data import tokenize_sft
from pipelines.train.templates import chat_template
from tests.formats.samples import bfcl_samples, chat_samples, preference_samples, reasoning_samples, tiny_tokenizer


def conversations():
    """(label, messages as TRL dicts, tools) for every test conversation; preference samples give two."""
    for s in bfcl_samples() + chat_samples() + reasoning_samples():
        yield s.kind, [to_trl_message(m) for m in s.messages], s.tools
    for s in preference_samples():
        prompt = [to_trl_message(m) for m in s.messages]
        for c in s.candidates:
            yield "preference", prompt + [to_trl_message(c.message)], s.tools


def for_template(messages, dialect):
    """The messages as an export in the matching chat_format carries them: lfm2_v2.jinja has no reasoning
    field, so the lfm2 layout opens the content with the <think> block (tests/formats/test_stock_templates.py
    checks the exported rows themselves)."""
    return [lay_out(m, "lfm2") for m in messages] if dialect == "lfm2" else messages


@pytest.mark.parametrize("dialect", ["lfm2", "lfm2.5"])
def test_rendering_equals_trls_lfm2_template_token_for_token(dialect):
    tok = tiny_tokenizer()
    shipped, training = chat_template(dialect), chat_template(dialect, training=True)
    compared, kinds, unrepresentable = 0, set(), 0
    for kind, messages, tools in conversations():
        try:
            ours = render(messages, tools, dialect)
        except ToolCallFormatError:
            assert dialect == "lfm2.5"  # strings with quotes cannot be written unescaped; lfm2 renders all
            unrepresentable += 1
            continue
        theirs = for_template(messages, dialect)
        assert ours == tok.apply_chat_template(theirs, tools=tools or None, chat_template=shipped, tokenize=False)
        expected = tok.apply_chat_template(theirs, tools=tools or None, chat_template=training, tokenize=True,
                                           return_dict=True)["input_ids"]
        assert tok(ours, add_special_tokens=False)["input_ids"] == expected, (kind, ours)
        prompt = messages[:-1]
        assert render(prompt, tools, dialect, add_generation_prompt=True) == tok.apply_chat_template(
            for_template(prompt, dialect), tools=tools or None, chat_template=shipped, tokenize=False,
            add_generation_prompt=True)
        compared += 1
        kinds.add(kind)
    assert kinds == {"tool_use", "chat", "reasoning", "preference"}
    assert compared >= 1000 + 12 + 8 + 24 - unrepresentable and unrepresentable < 100


@pytest.mark.parametrize("dialect", ["lfm2", "lfm2.5"])
def test_loss_mask_equals_the_templates_generation_mask(dialect):
    """Labels are set exactly on the tokens transformers marks as assistant tokens for the training template
    (every chat, reasoning and preference conversation, and every fourth BFCL one, to keep the suite quick)."""
    tok = tiny_tokenizer()
    training = chat_template(dialect, training=True)
    rows, expected = [], []
    for i, (kind, messages, tools) in enumerate(conversations()):
        if kind == "tool_use" and i % 4:
            continue
        try:
            render(messages, tools, dialect)
        except ToolCallFormatError:
            continue
        rows.append({"messages": messages, "tools": tools})
        out = tok.apply_chat_template(for_template(messages, dialect), tools=tools or None, chat_template=training,
                                      tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        expected.append(out["assistant_masks"])
    got = tokenize_sft(rows, tok, dialect, max_length=100_000)
    assert not got["skipped"]
    for labels, mask, ids in zip(got["labels"], expected, got["input_ids"]):
        assert [int(label != -100) for label in labels] == mask
        assert [t for t, m in zip(ids, mask) if m] == [label for label in labels if label != -100]


def test_parse_of_render_gives_the_conversation_back():
    samples = bfcl_samples() + chat_samples() + reasoning_samples()
    for s in samples:
        messages, tools = parse_conversation(render(s.messages, s.tools))
        assert messages == lfm2_view(s.messages), s.id
        assert tools == s.tools
    for s in preference_samples():
        for c in s.candidates:
            conversation = [*s.messages, c.message]
            assert parse_conversation(render(conversation))[0] == lfm2_view(conversation)


def test_lfm2_5_drops_earlier_reasoning_like_its_template():
    s = reasoning_samples(1)[0]
    text = render(s.messages, dialect="lfm2.5")
    assert text.count("<think>") == 1 and s.messages[-1].reasoning in text
    assert render(s.messages, dialect="lfm2").count("<think>") == 2


def test_model_output_parsing_accepts_the_bare_call_form():
    m = parse_assistant("<think>need weather</think>[get_weather(city='Oslo')]", bare_calls=True)
    assert m.reasoning == "need weather" and m.content == "" and m.tool_calls[0].arguments == {"city": "Oslo"}
    m = parse_assistant("Checking.<|tool_call_start|>[get_weather(city='Oslo')]<|tool_call_end|>")
    assert m.content == "Checking." and m.tool_calls[0].name == "get_weather"
    assert parse_assistant("[not a call]", bare_calls=True).content == "[not a call]"


@pytest.mark.parametrize("text, problem", [
    ("<|im_start|>user\nhi<|im_end|>\n", "starts with"),
    ("<|startoftext|><|im_start|>user\nhi", "unterminated"),
    ("<|startoftext|><|im_start|>tool\nraw<|im_end|>\n", "wrapped"),
    ("<|startoftext|><|im_start|>robot\nhi<|im_end|>\n", "unknown role"),
    ("<|startoftext|><|im_start|>assistant\n<|tool_call_start|>[f(1)]<|tool_call_end|><|im_end|>\n", "positional"),
])
def test_malformed_lfm2_text_fails_with_a_reason(text, problem):
    with pytest.raises(LFM2FormatError, match=problem):
        parse_conversation(text)


def test_reasoning_that_would_not_parse_back_is_refused():
    from pipelines.core.sample import Message

    with pytest.raises(LFM2FormatError, match="</think>"):
        render([Message("user", "q"), Message("assistant", "a", reasoning="x</think>y")])
