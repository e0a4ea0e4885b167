"""Correctness filters: tool calls against their schemas (tool_calls.py), math answers against references
(math_answer.py), and conversation format (format.py). Each is a registered `filter.*` step."""
