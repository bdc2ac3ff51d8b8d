"""Data preprocessing from the notes: mean subtraction, normalisation, PCA and whitening.

Every transform is fitted on the *training* data only and then applied unchanged to the
validation and test data (the notes: never preprocess the whole data set and split after).
Each is registered in ``PREPROCESSORS`` ("mean_center", "standardize", "minmax", "pca", "zca").
"""

from neuronlab.preprocessing.base import NotFittedError, Preprocessor
from neuronlab.preprocessing.pca import PCA, ZCA
from neuronlab.preprocessing.scaling import MeanCenter, MinMax, Standardize

__all__ = ["Preprocessor", "NotFittedError", "MeanCenter", "Standardize", "MinMax", "PCA", "ZCA"]
