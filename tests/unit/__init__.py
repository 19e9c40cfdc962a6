"""Unit tests: hand-built tensors and objects, no models."""
