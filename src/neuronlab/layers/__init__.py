"""Layers with explicit forward and backward passes, the Sequential container and ``mlp``."""

from neuronlab.layers.activations import ACTIVATIONS, ELU, LeakyReLU, PReLU, ReLU, Sigmoid, Tanh
from neuronlab.layers.base import Layer
from neuronlab.layers.builders import mlp
from neuronlab.layers.linear import Linear
from neuronlab.layers.maxout import Maxout
from neuronlab.layers.noise import Dropout, GaussianNoise
from neuronlab.layers.normalization import BatchNorm, LayerNorm
from neuronlab.layers.sequential import Sequential, Summary

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "BatchNorm",
    "Dropout",
    "GaussianNoise",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Maxout",
    "PReLU",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Summary",
    "Tanh",
    "mlp",
]
