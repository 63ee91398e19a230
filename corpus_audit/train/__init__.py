"""Training and evaluating the classifier: datasets, fastText training, metrics and model cards."""
