#!/usr/bin/env bash
# Set up (idempotent, see setup.sh) and run the whole test suite. Extra arguments go to pytest.
# The tests start and stop every service they need themselves (llama_cpp.server, the Argilla stack);
# here we only make sure the Debian packages behind them are present (redis for Argilla, chromium for
# the browser test), so that time is not spent inside a test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q --no-install-recommends "${missing[@]}" || \
   (apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}")) >/dev/null
fi
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
