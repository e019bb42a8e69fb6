"""The toy domain: a small MLP on 2-D ring samples, graded against the exact mixture."""

from .domain import ToyConfig, domain

__all__ = ["ToyConfig", "domain"]
