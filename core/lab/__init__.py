"""The learners' lab: train a tokenizer and a small GPT-2 (attention-only or not) on repeated
random sequences or on texts, watch induction heads form, and save checkpoints that every page
of AttnScope opens as a model folder."""
