"""pipelines.generators.turn_checks: the copy checks that make multi_turn ask a turn again."""

from pipelines.core.sample import Sample
from pipelines.generators.calls import persona_traits
from pipelines.generators.turn_checks import asks_something, containment, speaks_as, turn_problem, voice_problem

EXAMPLES = ["Good afternoon. First, make sure the tablet is connected to your Wi-Fi. Then install a video "
            "calling app that your grandchildren already use."]
TURNS = [{"user": "How should I price a new chestnut tart for the winter season?",
          "assistant": "Aim for ingredient costs of about a third of the price, then compare with nearby bakeries."}]


def test_containment_is_the_share_of_trigrams_found_elsewhere():
    assert containment("a b c d", "x a b c d y") == 1.0
    assert containment("a b c d", "a b c") == 0.5
    assert containment("", "anything") == 0.0
    assert containment("Yes", "yes!") == 1.0  # short texts compare as one gram, case and punctuation aside


def test_fresh_turns_pass():
    assert turn_problem("user", "And if I only sell them in November?", TURNS, EXAMPLES, 0.8) is None
    current = TURNS + [{"user": "And if I only sell them in November?", "assistant": None}]
    assert turn_problem("assistant", "Seasonal items can carry a small premium.", current, EXAMPLES, 0.8) is None


def test_each_kind_of_copy_is_named():
    assert turn_problem("user", "How should I price a new chestnut tart for the winter season??", TURNS,
                        EXAMPLES, 0.8) == "repeated_user_turn"
    assert turn_problem("user", TURNS[0]["assistant"], TURNS, EXAMPLES, 0.8) == "role_confusion"
    current = TURNS + [{"user": "Can I sell them online as well as in the shop?", "assistant": None}]
    assert turn_problem("assistant", "Can I sell them online as well as in the shop?", current, EXAMPLES,
                        0.8) == "echoed_user_turn"
    assert turn_problem("assistant", TURNS[0]["assistant"], current, EXAMPLES, 0.8) == "repeated_assistant_turn"
    copied = "Good afternoon. First, make sure the tablet is connected to your Wi-Fi. Then install a video app."
    assert turn_problem("assistant", copied, current, EXAMPLES, 0.8) == "copied_example"


def test_the_limit_is_a_share():
    half = "make sure the tablet is connected today, said nobody at all here"
    assert turn_problem("user", half, [], EXAMPLES, 0.9) is None
    assert turn_problem("user", half, [], EXAMPLES, 0.3) == "copied_example"


def test_an_assistant_introducing_itself_as_the_persona_has_swapped_roles():
    current = [{"user": "Hi.", "assistant": None}]
    text = "I know you're a serious cyclist. I'm a semi-professional cyclist. I've been riding for 10 years."
    assert turn_problem("assistant", text, current, [], 0.8, "semi-professional cyclist") == "role_confusion"
    assert turn_problem("assistant", "As a cyclist you should rest.", current, [], 0.8, "semi-professional cyclist") is None
    assert turn_problem("user", text, [], [], 0.8, "semi-professional cyclist") is None  # the user may say it


def test_instruct_model_failures_are_named():
    assert voice_problem("user", "Subject: Visa appeal\nDear Sir, I need help.") == "letter_format"
    assert voice_problem("user", "Can you check my invoice? Best regards, Ana") == "letter_format"
    assert voice_problem("user", "Please email [Your Name] about the rates for my rush job.") == "placeholder"
    assert voice_problem("user", "Sure, I'd be happy to help. What do you need?") == "user_speaks_as_assistant"
    assert voice_problem("user", "Hello! How can I assist you today?") == "user_speaks_as_assistant"
    assert voice_problem("user", "human intervention.") == "fragment"
    assert voice_problem("user", "How much should I charge for a 3,000-word rush translation?") is None
    long_answer = "Start by listing your weekly costs, then"
    assert voice_problem("assistant", long_answer, "length") == "truncated_answer"
    assert voice_problem("assistant", "As an AI language model, I cannot feel.") == "ai_disclaimer"
    assert voice_problem("assistant", "Use this:\n```python\nprint(1)\n```", asked="How do I budget?") == \
        "unrequested_code"
    assert voice_problem("assistant", "```python\nprint(1)\n```", asked="Write a Python script to print 1") is None
    assert voice_problem("assistant", "Charge about 20% more for a rush job.", "stop") is None
    # Read from the embedded Qwen2.5-Coder-0.5B-Instruct's output:
    assert voice_problem("user", "83.5 JPY USD") == "fragment"
    assert voice_problem("user", "I'm sorry, but I can't assist with that request.") == "user_speaks_as_assistant"
    assert voice_problem("user", "The date is 2023-03-12. What is your question?") == "user_speaks_as_assistant"
    assert voice_problem("user", "Convert 5 km, one or two sentences, first person.") == "copied_instructions"
    assert voice_problem("assistant", "The user asked to calculate the date.") == "talks_about_user"
    assert voice_problem("assistant", "The user provided two numbers, 34mm and 123.456 cm.") == "talks_about_user"
    assert voice_problem("user", "Based on the given details, I hope to cut down on mistakes.") == "copied_instructions"
    assert voice_problem("user", "What kind of help are you looking for with the statements?") == \
        "user_speaks_as_assistant"
    assert voice_problem("user", "What creative block should the AI assistant consider?") == "copied_instructions"
    assert voice_problem("user", "Person: How do we get customers to come back?") == "copied_instructions"
    loop = 'Can you help me prepare for a job interview in a completely different field? How about this line "'
    assert voice_problem("user", loop * 2) == "repetition_loop"
    assert asks_something("Explain how a bicycle gear works, in under 100 words.")
    assert voice_problem("user", "What is the creative block you are trying to avoid?") == "user_speaks_as_assistant"
    assert voice_problem("user", "Please give the details and I will help you decide.") == "user_speaks_as_assistant"
    assert voice_problem("assistant", "Emitters for plant,蔬 release 2 litres.", asked="Extract the facts.") == \
        "foreign_script"
    assert voice_problem("assistant", "東京 is Tokyo.", asked="How do I write 東京 in English?") is None
    assert voice_problem("assistant", "The new date, 2023-03-12, is a Sunday.") is None
    assert not asks_something("1000 EUR is approximately 1,000 BRL.")
    assert all(map(asks_something, ["Convert 100 EUR to USD for my trip.", "I need the weather in Oslo.",
                                    "What is 3 + 4", "Could you count the words in this?"]))
    assert speaks_as("As a nurse in Amman, one of the biggest challenges is stress.", "nurse")
    assert voice_problem("assistant", "I'm just a computer program, so I don't have feelings.") == "ai_disclaimer"
    assert voice_problem("user", "What is calculate? It must state these values exactly: 2 + 3") == "copied_instructions"


def test_refusals_and_pasted_persona_text_are_named():
    assert voice_problem("assistant", "Sorry, but I can't assist with that.") == "refusal"
    assert voice_problem("assistant", "I'm sorry, but I am not able to assist with that.") == "refusal"
    assert voice_problem("user", "Would you like me to help reconcile the bank statements?") == "user_speaks_as_assistant"
    persona = "A warehouse supervisor who is past the basics but not confident and writes formally."
    assert voice_problem("user", "Are past the basics but not confident and writes formally?",
                         persona=persona) == "copied_persona"
    assert voice_problem("user", "How do I cut picking mistakes in a warehouse of 40 staff?", persona=persona) is None


def test_a_user_may_state_their_own_goal_in_the_personas_words():
    persona = {"description": "A session musician (Lagos) who wants to get past a creative block before a "
                              "deadline. Is new to the topic and writes in short, casual messages.",
               "goals": "get past a creative block before a deadline"}
    traits = persona_traits(Sample(persona=persona))
    assert voice_problem("user", "How can I get past a creative block before a deadline?", persona=traits) is None
    assert voice_problem("user", "I'm new to the topic and writes in short, casual messages, help?",
                         persona=traits) == "copied_persona"


def test_an_opening_about_the_goal_shares_a_word_with_it():
    from pipelines.generators.calls import off_goal

    goal = "come back safely from a crash and a broken collarbone"
    assert off_goal("What are the current car models and the nearest amusement park?", goal)
    assert not off_goal("How soon can I ride again after breaking my collarbone?", goal)
    assert not off_goal("Where can I get better prices for my wheat?", "find better prices by selling directly")
    assert not off_goal("Anything at all", None)  # no goal, nothing to be off
