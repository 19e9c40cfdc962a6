"""Methods: analyses built from a model and an Analysis (effective attention, words, head
statistics, ablation, predictions, comparison, generation)."""
