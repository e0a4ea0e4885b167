"""The bundled LFM2 trainer: SFT and DPO with TRL on an exported dataset version (see docs/train.md).

Heavy libraries (torch, transformers, trl, peft, datasets) are imported inside functions only."""
