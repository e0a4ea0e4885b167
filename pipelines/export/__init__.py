"""Versioned dataset exports: samples -> TRL rows -> immutable registry versions (see docs/export.md)."""
