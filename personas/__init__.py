"""Personas: who each generated conversation is for. See schema (the record), bank (loading banks),
build_bank (building the shipped bank) and sampler (the `personas.sample` step).

The step module is not imported here: registering components is left to pipelines.core.registry.
"""

from personas.bank import BankError, load_bank
from personas.schema import ATTRIBUTE_FIELDS, Persona, dedupe_personas

__all__ = ["ATTRIBUTE_FIELDS", "BankError", "Persona", "dedupe_personas", "load_bank"]
