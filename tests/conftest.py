"""Suite-wide settings: nothing a test runs may reach the network (models and data come from packages
and ../shared/data), and a test never writes into the user's cache or the repository's runs/."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
