"""Batch jobs: many edits from a JSONL jobs file, on this machine or a Ray cluster (`python -m ar_edit_pack batch`)."""
