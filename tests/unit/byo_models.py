"""A nanoGPT-shaped model (Karpathy's ``model.py``: ``CausalSelfAttention`` with ``c_attn`` and
``c_proj`` calling ``F.scaled_dot_product_attention(..., is_causal=True)``, or the explicit
``softmax(masked q kᵀ / √d)`` when ``explicit`` is set) and a model over ``nn.MultiheadAttention``,
for the bring-your-own-model tests. The file also follows :mod:`core.engine.byo`'s contract
(``build``, ``encode``, ``decode``), so the tests load its own text as a user's file."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

VOCAB = "abcdefghijklmnopqrstuvwxyz .,"


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head, self.n_embd = n_head, n_embd
        self.explicit = False  # nanoGPT's "flash" switch, the other way round
        self.last_att = None  # the explicit path's weights (B, nh, T, T)
        mask = torch.tril(torch.ones(block_size, block_size))
        self.register_buffer("bias", mask.view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()  # batch, sequence length, embedding width
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if not self.explicit:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)  # (B, nh, T, T)
            self.last_att = att
            y = att @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd)
        )

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size=len(VOCAB), n_layer=3, n_head=4, n_embd=32, block_size=64):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head, block_size) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def set_explicit(self, explicit: bool) -> None:
        for block in self.h:
            block.attn.explicit = explicit

    def forward(self, idx, targets=None):
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x)), None


class MHAModel(nn.Module):
    """Two ``nn.MultiheadAttention`` layers (the second causal, by a boolean mask) called with
    ``need_weights=False``, then an ``nn.TransformerEncoderLayer`` (its fast path in eval)."""

    def __init__(self, vocab_size=len(VOCAB), width=16, heads=2):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, width)
        self.first = nn.MultiheadAttention(width, heads, batch_first=True)
        self.second = nn.MultiheadAttention(width, heads, batch_first=True)
        self.encoder = nn.TransformerEncoderLayer(width, heads, 32, dropout=0.0, batch_first=True)

    def forward(self, ids):
        x = self.emb(ids)  # (1, T, D)
        T = ids.shape[1]
        y, _ = self.first(x, x, x, need_weights=False)
        x = x + y
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # True: not allowed
        y, _ = self.second(x, x, x, attn_mask=future, need_weights=False)
        return self.encoder(x + y)


def build() -> nn.Module:
    torch.manual_seed(0)
    return GPT()


def encode(text: str) -> list[int]:
    return [VOCAB.index(c) for c in text.lower() if c in VOCAB]


def decode(ids: list[int]) -> list[str]:
    return [VOCAB[i] for i in ids]


RAN: list[int] = []  # what a test's user file appends to when it runs
