"""Artifact writer and reader (format: docs/artifact-format.md)."""
