"""Infinity family: next-scale bitwise transformer, BSQ VAE, scale schedules, and its editors (AREdit, VAREdit)."""
