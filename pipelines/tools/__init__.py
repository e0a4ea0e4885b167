"""Tools for function-calling data: schemas and their normaliser (schema), catalogs from files and BFCL
(catalog), executed built-in tools (executors, calculator), the LLM-simulated tool (simulated), decoding
schemas (decoding), plans per case (selection), checks (checks, grounding), prompt rendering (prompting,
fewshot), tools invented per domain (generate: the `tools.generate` step) and `refinery tools` (cli)."""
