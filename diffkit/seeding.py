"""Seeds derived from several integers; imports nothing heavy (networks use it too)."""

from __future__ import annotations


def mix_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (splitmix64-style), stable across runs."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF
