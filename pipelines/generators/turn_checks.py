"""Checks on one generated turn against the conversation so far and the few-shot examples.

Small base models loop: the simulated user asks its last question again, or says what the assistant just
said or the assistant introduces itself as the persona (it has slipped into the other role); the assistant echoes the question or its own earlier answer;
either copies a few-shot example (the embedded 270M model answered a dosage question with the example's
"make sure the tablet is connected to your Wi-Fi"). Each is caught by word-trigram containment: the share
of the new turn's trigrams found in the other text. A turn that fails is asked again with a new seed, and
if it fails every time the sample is dropped with the reason named here.

Small instruct models fail differently, and `voice_problem` names those failures: a user message written
as a letter ("Subject: ...", "Dear ...", "Best regards"), a template placeholder ("[Your Name]"), the
simulated user speaking as the assistant ("Sure, I'd be happy to help", "How can I assist you?"), the
prompt's instructions copied into the message ("first person, in the user's own voice"), a message
that loops (the same ten words twice), an answer that opens with an AI disclaimer, an answer that
narrates the exchange ("The user asked ..."), a code block nobody asked for, and an answer cut off at
max_tokens. `asks_something` tells a request from a
statement ("1000 EUR is approximately 1,000 BRL.").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_WORD = re.compile(r"\w+")
_LETTERS = re.compile(r"[^\W\d_]+")
# A reply that narrates the exchange ("The user asked to calculate ...") instead of answering it.
_ABOUT_USER = re.compile(r"^\W*the user('?s)? (wrote|asked|wants|requested|called|is asking|has|message|"
                         r"provided|gave|needs|said)\b", re.IGNORECASE)


def trigrams(text: str) -> set[tuple[str, ...]]:
    """Word trigrams of the lowercased text; a text under three words is one gram of all its words."""
    w = _WORD.findall(text.lower())
    if len(w) < 3:
        return {tuple(w)} if w else set()
    return set(zip(w, w[1:], w[2:]))


def containment(text: str, other: str) -> float:
    """Share of `text`'s word trigrams that also occur in `other` (1.0: every one of them does)."""
    mine = trigrams(text)
    return len(mine & trigrams(other)) / len(mine) if mine else 0.0


def _copies(text: str, others: Iterable[str], limit: float) -> bool:
    return any(containment(text, o) >= limit for o in others if o)


def speaks_as(text: str, occupation: str | None) -> bool:
    """Does the text introduce its speaker as this occupation ("I'm a semi-professional cyclist", "As a
    nurse in Amman, ...")?"""
    if not occupation:
        return False
    job = re.escape(occupation)
    return re.search(rf"\bI(?:'m|’m| am) (?:an? )?{job}\b|^\W*As an? {job}\b", text, re.IGNORECASE) is not None


_LETTER = re.compile(r"^\s*(subject\s*:|dear\b)|\b(best regards|kind regards|warm regards|sincerely|yours truly)\b",
                     re.IGNORECASE | re.MULTILINE)
_PLACEHOLDER = re.compile(r"\[(?:your |the |my )?[A-Z][\w' .-]{0,30}\]|<(?:your|name|insert)[^>]{0,30}>|\{\{?\s*\w+\s*\}?\}")
_ASSISTANT_VOICE = re.compile(
    r"^\s*(sure|certainly|of course|absolutely|great question)\b|how (can|may) i (help|assist)|"
    r"\b(i'?d|i would) be (happy|glad) to (help|assist)|\bi'?m (here|happy) to help|\bas an ai\b|"
    r"\bi'?m an ai\b|let me know if you (have|need)|let me know what you|anything else (that )?(you'd like|i can)|"
    r"feel free to ask|what is your question|what can i do for you|let'?s begin|what (kind|type) of help|"
    r"would you like me to|\bi('ll| will| can) help you\b|anything (specific )?you (want|would like|need) to know|"
    r"\byou('re| are) (trying|hoping|looking) to\b", re.IGNORECASE)
# Han, kana and hangul in a message whose context has none: the Qwen teacher slips a Chinese word into
# English text ("Emitters for plant,蔬").
_FOREIGN_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
# The prompt's own instructions written into a user message ("..., one or two sentences, first person").
_INSTRUCTION_ECHO = re.compile(r"\b(first person|in the user'?s (own )?voice|one or two sentences|test data|"
                               r"reply with json|no greeting line|must state these values|these values exactly|"
                               r"based on the (given|provided) (details|information|description)|"
                               r"(the|an) ai assistant)\b", re.IGNORECASE)
# A message that starts with the prompt's field label ("Request: ...", "Person: How do we ...").
_LABEL = re.compile(r"^\W*((rewritten|new|evolved) )?(request|instruction|person|user|question|message)\s*:",
                    re.IGNORECASE)
_REFUSAL = re.compile(r"^\W*(i'?m )?sorry,? (but )?i(?: can'?t|cannot| am unable to|'?m unable to| am not able to|"
                      r"'?m not able to) (assist|help)", re.IGNORECASE)
_AI_DISCLAIMER = re.compile(r"\bas an ai( language model)?\b|\bi'?m (just )?an ai\b|\bi don'?t have personal|"
                            r"\bi'?m (just )?a computer program\b|\bi don'?t have feelings",
                            re.IGNORECASE)
_ASKS_FOR_CODE = re.compile(r"\b(code|script|function|program|sql|python|javascript|regex|formula|snippet|"
                            r"command|bash|html|css|json|yaml)\b", re.IGNORECASE)


_ASK = re.compile(r"\?|\b(please|can you|could you|would you|i need|i want|i'?d like|help me|tell me|show me|"
                  r"give me|let me know|i'?m looking for|i wonder)\b|^\W*(convert|calculate|compute|find|check|"
                  r"get|work out|figure out|count|change|add|look up|what|how|which|when|where|why|explain|"
                  r"describe|write|list|suggest|compare|summari[sz]e|outline|recommend|draft|plan|design|"
                  r"create|teach|name|translate)\b",
                  re.IGNORECASE | re.MULTILINE)


def asks_something(text: str) -> bool:
    """Does a request ask for anything: a question mark, a polite ask, or an imperative verb first?"""
    return _ASK.search(text) is not None


def foreign_script(text: str, context: str) -> bool:
    """Does the text hold Han, kana or hangul characters when its context holds none?"""
    return _FOREIGN_SCRIPT.search(text) is not None and _FOREIGN_SCRIPT.search(context) is None


def loops(text: str, n: int = 10) -> bool:
    """Does the text say the same run of n words twice (a small model stuck in a loop: "How about this line
    "Can you help me prepare ... How about this line "Can you help me prepare ...")?"""
    w = _WORD.findall(text.lower())
    runs = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    return len(set(runs)) < len(runs)


def shares_run(text: str, other: str, n: int = 6) -> bool:
    """Does `text` repeat a run of n words from `other`?"""
    a, b = _WORD.findall(text.lower()), _WORD.findall(other.lower())
    runs = {tuple(b[i:i + n]) for i in range(len(b) - n + 1)}
    return any(tuple(a[i:i + n]) in runs for i in range(len(a) - n + 1))


# Every reason voice_problem names (tests and docs read it).
VOICE_REASONS = frozenset({
    "letter_format", "placeholder", "repetition_loop", "foreign_script", "user_speaks_as_assistant",
    "copied_instructions", "copied_persona", "fragment", "truncated_answer", "refusal", "talks_about_user", "ai_disclaimer",
    "unrequested_code"})


def voice_problem(role: str, text: str, finish_reason: str | None = None, asked: str = "",
                  persona: str = "") -> str | None:
    """What an instruct model got wrong in one message, or None. `asked`: the user message an assistant
    turn answers (a code block is fine when it asked for code). `persona`: the description a simulated
    user was given; pasting six words of it in a row ("writes formally in complete sentences") is not
    speaking as that person."""
    if _LETTER.search(text):
        return "letter_format"
    if _PLACEHOLDER.search(text):
        return "placeholder"
    if loops(text):
        return "repetition_loop"
    if foreign_script(text, asked + persona):
        return "foreign_script"
    if role == "user":
        if _ASSISTANT_VOICE.search(text) or _REFUSAL.search(text):
            return "user_speaks_as_assistant"
        if _INSTRUCTION_ECHO.search(text) or _LABEL.search(text):
            return "copied_instructions"
        if persona and shares_run(text, persona):
            return "copied_persona"
        # A piece of the answer cut out as a "message" ("human intervention.", "83.5 JPY USD") asks nothing.
        return "fragment" if len(_LETTERS.findall(text)) < 4 else None
    if finish_reason == "length":
        return "truncated_answer"
    if _REFUSAL.search(text):
        return "refusal"
    if _ABOUT_USER.search(text):
        return "talks_about_user"
    if _AI_DISCLAIMER.search(text):
        return "ai_disclaimer"
    if "```" in text and not _ASKS_FOR_CODE.search(asked):
        return "unrequested_code"
    return None


def turn_problem(role: str, text: str, turns: list[dict[str, Any]], example_texts: list[str],
                 limit: float, occupation: str | None = None, finish_reason: str | None = None,
                 persona: str = "") -> str | None:
    """Why a new `role` turn may not join the conversation, or None. `turns` holds the exchanges so far
    ({"user", "assistant"}); for an assistant turn its last entry is the user turn being answered.
    `occupation` is the persona's: an assistant that introduces itself with it has taken the user's role."""
    users = [t["user"] for t in turns]
    answers = [t["assistant"] for t in turns if t.get("assistant")]
    if role == "user":
        if _copies(text, users, limit):
            return "repeated_user_turn"
        if _copies(text, answers, limit):
            return "role_confusion"  # the simulated user repeats the assistant's words as its own
    else:
        if speaks_as(text, occupation):
            return "role_confusion"
        if _copies(text, users[-1:], limit):
            return "echoed_user_turn"
        if _copies(text, answers, limit):
            return "repeated_assistant_turn"
    if _copies(text, example_texts, limit):
        return "copied_example"
    return voice_problem(role, text, finish_reason, users[-1] if users and role == "assistant" else "", persona)
