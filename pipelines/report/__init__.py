"""`refinery report RUN_DIR`: one self-contained HTML page about a run (funnel, yield, personas, diversity,
cost, samples, evals). collect.py reads the run with polars, figures.py draws with Plotly, page.py renders."""
