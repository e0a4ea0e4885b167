"""Data formats: LFM2 chat text (`lfm2`), its Python-style tool calls (`pythonic_calls`), TRL dataset rows
(`trl`) and the message dicts they share (`messages`). Pure functions, no heavy imports."""
