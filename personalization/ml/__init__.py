"""Pure computation for segments and predictions: pandas/numpy/scipy/scikit-learn in, data frames out. No Django."""
