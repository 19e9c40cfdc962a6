"""One cached model, many sessions (threads): hooks must only ever touch their own thread's
forward pass. Found by the load test: two analyses at once got each other's weights."""

from __future__ import annotations

import threading

import torch

from core import analyze
from core.methods.ablation import ablate_heads

TEXTS = ["The first session reads this.", "A second, longer text arrives at the same time here."]


def test_concurrent_analyses_each_get_their_own_weights(minilm):
    reference = [analyze(minilm, text) for text in TEXTS]
    failures: list[str] = []

    def work(index: int) -> None:
        for _ in range(8):
            try:
                got = analyze(minilm, TEXTS[index])
                if not torch.allclose(got.attentions, reference[index].attentions, atol=1e-6):
                    failures.append(f"thread {index}: wrong weights")
            except Exception as error:  # a shape clash is what the bug looked like
                failures.append(f"thread {index}: {error}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_an_ablation_in_one_thread_leaves_another_threads_pass_alone(minilm):
    reference = analyze(minilm, TEXTS[0])
    stop = threading.Event()

    def ablate_repeatedly() -> None:
        with ablate_heads(minilm, [(layer, h) for layer in range(6) for h in range(12)]):
            while not stop.is_set():
                with torch.inference_mode():
                    minilm.model(input_ids=torch.tensor([[101, 2023, 102]]))

    worker = threading.Thread(target=ablate_repeatedly)
    worker.start()
    try:
        for _ in range(5):
            got = analyze(minilm, TEXTS[0])
            assert torch.allclose(got.head_entropy, reference.head_entropy, atol=1e-6)
    finally:
        stop.set()
        worker.join()
