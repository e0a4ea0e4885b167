#!/usr/bin/env bash
# Set up (idempotent, see setup.sh), then run the quickstart recipe end to end on the embedded model.
# Extra arguments are key=value overrides, e.g. steps.personas.n=8
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/refinery run recipes/quickstart.yaml "$@"
.venv/bin/refinery status runs/quickstart
echo "the run report: runs/quickstart/report.html (open it in a browser)"
