"""A tiny autoregressive policy: a GRU reads the prompt, then samples the completion."""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.efficacy.tasks import COMPLETION_TOKENS, EOS, MAX_LEN, PAD, VOCAB


class Policy(nn.Module):  # type: ignore[misc]  # torch is read as Any (mypy skips it)
    """GRU encoder-decoder over the task vocabulary; only completion tokens can be emitted."""

    def __init__(self, vocab: int = VOCAB, hidden: int = 64, embedding: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.encoder = nn.GRU(embedding, hidden, batch_first=True)
        self.decoder = nn.GRUCell(embedding, hidden)
        self.head = nn.Linear(hidden, vocab)
        mask = torch.full((vocab,), float("-inf"))
        mask[torch.as_tensor(COMPLETION_TOKENS)] = 0.0
        self.register_buffer("allowed", mask)

    def _start(self, prompts: torch.Tensor) -> torch.Tensor:
        _, hidden = self.encoder(self.embed(prompts))
        return hidden[0]

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head(hidden) + self.allowed

    @torch.no_grad()  # type: ignore[untyped-decorator]
    def sample(
        self, prompts: torch.Tensor, temperature: float, generator: torch.Generator
    ) -> torch.Tensor:
        """(B, MAX_LEN) completions; PAD after EOS."""
        hidden = self._start(prompts)
        token = torch.full((prompts.shape[0],), PAD, dtype=torch.long)
        finished = torch.zeros(prompts.shape[0], dtype=torch.bool)
        out = torch.full((prompts.shape[0], MAX_LEN), PAD, dtype=torch.long)
        for position in range(MAX_LEN):
            hidden = self.decoder(self.embed(token), hidden)
            probs = torch.softmax(self._logits(hidden) / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            token = torch.where(finished, torch.full_like(token, PAD), token)
            out[:, position] = token
            finished |= token == EOS
        return out

    def log_probs(self, prompts: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
        """(B, MAX_LEN) log-probabilities of the completion tokens; 0 after EOS."""
        hidden = self._start(prompts)
        token = torch.full((prompts.shape[0],), PAD, dtype=torch.long)
        steps = []
        for position in range(MAX_LEN):
            hidden = self.decoder(self.embed(token), hidden)
            token = completions[:, position]
            logp = torch.log_softmax(self._logits(hidden), dim=-1)
            steps.append(logp.gather(1, token.clamp_min(1)[:, None]).squeeze(1))
        return torch.stack(steps, dim=1) * (completions != PAD)
