"""Layers with explicit forward and backward passes, and the Sequential container."""

from neuronlab.layers.base import Layer
from neuronlab.layers.sequential import Sequential, Summary

__all__ = ["Layer", "Sequential", "Summary"]
