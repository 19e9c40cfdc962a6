"""The engine: models, devices, tokenization, the forward pass with its hooks, statistics and
the Analysis they produce."""
