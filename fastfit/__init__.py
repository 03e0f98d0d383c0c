"""fastfit: fast CPU training of dense neural networks behind scikit-learn estimators."""

from fastfit._mlp import MLPClassifier, MLPRegressor

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "MLPRegressor", "__version__"]
