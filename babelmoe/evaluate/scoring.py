"""Log-likelihood of sequence tails: the batched forward behind perplexity and multiple choice.

A request is a token sequence and a number k of target tokens at its end; its score is
sum_{t = n-k}^{n-1} log p(tokens[t] | tokens[:t]). Requests are sorted by length (longest first,
so padding is small and an out-of-memory error shows up in the first batch), right-padded with an
attention mask, and scored in one forward per batch. Log-softmax runs in float32 (or in the
model's dtype when that is wider), one row at a time, so the float copy of the logits is one
sequence long, not one batch.

Memory: logits are [batch, kept positions, vocabulary] in the model's dtype; with a 262k-token
vocabulary (Gemma) that is 0.5 MB per position in bf16. Models whose forward takes
``logits_to_keep`` (transformers' causal LMs do) compute only the last positions any row of the
batch needs: few for multiple choice, nearly all for perplexity windows. ``batch_size`` is the
remaining trade-off.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from babelmoe.evaluate.encoding import batches, eval_mode, input_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TailScore:
    """Score of the last ``n_tokens`` tokens of one request."""

    logprob: float
    """Sum of the natural-log probabilities of the target tokens."""
    n_tokens: int
    """Number of target tokens."""
    greedy: bool
    """Whether every target token was the model's arg-max prediction."""


def _check(requests: Sequence[tuple[Sequence[int], int]]) -> None:
    for index, (tokens, n_targets) in enumerate(requests):
        if not 1 <= n_targets < len(tokens):
            raise ValueError(
                f"request {index}: {n_targets} targets in a sequence of {len(tokens)} tokens "
                "(need 1 <= targets < length: the first token has nothing to be predicted from)"
            )


@torch.inference_mode()
def score_tails(
    model: PreTrainedModel,
    requests: Sequence[tuple[Sequence[int], int]],
    *,
    batch_size: int,
    pad_id: int,
    desc: str = "scoring",
) -> list[TailScore]:
    """Score each ``(tokens, n_targets)`` request; results come back in the requests' order.

    Args:
        model: a causal LM returning ``.logits`` of shape [batch, time, vocab].
        requests: token ids and how many tokens at the end are targets (1 <= k < len(tokens)).
        batch_size: sequences per forward.
        pad_id: id written into padded positions (masked, never scored).
        desc: label of the progress bar.
    """
    _check(requests)
    device = input_device(model)
    keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
    order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
    results: list[TailScore | None] = [None] * len(requests)
    n_batches = -(-len(order) // batch_size)
    with eval_mode(model):
        bars = tqdm(
            batches(order, batch_size), total=n_batches, desc=desc, disable=None, leave=False
        )
        for idx in bars:
            longest = len(requests[idx[0]][0])
            input_ids = torch.full((len(idx), longest), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(idx), longest), dtype=torch.long)
            for row, i in enumerate(idx):
                tokens = requests[i][0]
                input_ids[row, : len(tokens)] = torch.as_tensor(tokens, dtype=torch.long)
                attention_mask[row, : len(tokens)] = 1
            input_ids = input_ids.to(device)
            first = min(len(requests[i][0]) - 1 - requests[i][1] for i in idx)
            extra = {"logits_to_keep": longest - first} if keep_logits else {}
            logits = model(
                input_ids=input_ids, attention_mask=attention_mask.to(device), **extra
            ).logits  # [B, kept, V]: positions longest - kept .. longest - 1
            offset = longest - logits.shape[1]
            wide = torch.promote_types(logits.dtype, torch.float32)
            sums, greedy = [], []
            for row, i in enumerate(idx):
                length, k = len(requests[i][0]), requests[i][1]
                start = length - 1 - k - offset
                pred = logits[row, start : start + k].to(wide)  # [k, V] predicts ...
                target = input_ids[row, length - k : length]  # [k] ... these tokens
                logp = pred.log_softmax(-1).gather(-1, target[:, None]).squeeze(-1)  # [k]
                sums.append(logp.double().sum())
                greedy.append((pred.argmax(-1) == target).all())
            for i, total, hit in zip(
                idx, torch.stack(sums).tolist(), torch.stack(greedy).tolist(), strict=True
            ):
                results[i] = TailScore(logprob=total, n_tokens=requests[i][1], greedy=bool(hit))
    missing = [i for i, r in enumerate(results) if r is None]
    assert not missing, f"unscored requests {missing}"
    return results  # type: ignore[return-value]
