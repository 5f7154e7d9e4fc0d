"""The GRPO objective: group-relative advantages and the clipped policy-ratio loss.

Pure tensor functions, so the algorithm can be read and tested apart from the trainer.

Advantages (per group of G completions of one prompt):
    ``grpo``:    (r - mean) / (std + eps)
    ``dr_grpo``: r - mean                       (no std scaling: Dr. GRPO, Liu et al. 2025)
    ``dapo``:    (r - mean) / (std + eps)

Loss per token t of completion i, with ratio ``rho = exp(logp - old_logp)`` (with one update
per sampled batch the old policy is the current one, ``old_logp = logp.detach()``, so
``rho = 1`` and only its gradient counts, as in TRL):
    ``-w_t * min(rho * A_i, clip(rho, 1 - eps_low, 1 + eps_high) * A_i) + beta * KL_t``
with the k3 estimator ``KL = exp(ref - logp) - (ref - logp) - 1`` and an optional per-token weight
``w_t`` (1 by default; the truncated importance-sampling correction of vLLM rollouts,
:func:`truncated_importance_weights`). Aggregation over the whole step (every group, every
forward chunk):
    ``grpo``:    mean over each completion's tokens, then mean over completions;
    ``dr_grpo``: sum over all tokens / (completions x max completion length);
    ``dapo``:    sum over all tokens / number of tokens (token-level mean).
A trainer that scores a step in chunks passes the step's ``num_sequences`` and ``num_tokens`` to
:func:`policy_loss`; each chunk's loss is then its exact share of the step's loss, and the chunk
losses add up to the same value (and gradient) whatever the chunking. In particular ``dapo``
divides by the completion tokens of the whole step, not of a chunk: it differs from ``grpo``
whenever completions differ in length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

LossType = Literal["grpo", "dr_grpo", "dapo"]


def group_advantages(
    rewards: torch.Tensor, group_size: int, loss_type: LossType = "grpo", eps: float = 1e-4
) -> torch.Tensor:
    """Advantages of completions laid out group by group (``group_size`` per prompt)."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards is not a whole number of groups of {group_size}")
    grouped = rewards.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if loss_type == "dr_grpo":
        return centred.view(-1)
    # population std, as GRPO's group statistics use all G completions
    std = grouped.std(dim=1, keepdim=True, unbiased=False)
    return (centred / (std + eps)).view(-1)


def zero_spread_groups(rewards: torch.Tensor, group_size: int, tol: float = 1e-8) -> torch.Tensor:
    """A boolean per group: True where every completion got the same reward."""
    grouped = rewards.view(-1, group_size)
    return (grouped.max(dim=1).values - grouped.min(dim=1).values) <= tol


@dataclass
class LossOutput:
    loss: torch.Tensor
    kl: float  # these three: means over the batch's completion tokens
    clip_fraction: float
    ratio_mean: float
    tokens: int = 0  # completion tokens in the batch (to combine the means of several batches)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    loss_type: LossType = "grpo",
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    max_completion_length: int | None = None,
    token_weights: torch.Tensor | None = None,
    num_sequences: float | None = None,
    num_tokens: float | None = None,
) -> LossOutput:
    """The clipped surrogate loss over a batch of completions.

    Args:
        logp: (N, T) log-probabilities of the sampled tokens under the current policy.
        old_logp: (N, T) the same under the policy that sampled them (detached); ``None``: the
            current policy's, detached (one update per sampled batch: ratio 1).
        advantages: (N,) one advantage per completion.
        mask: (N, T) 1 for completion tokens, 0 for padding.
        ref_logp: (N, T) under the frozen reference, needed when ``beta > 0``.
        max_completion_length: the length ``dr_grpo`` divides by (default: T).
        token_weights: (N, T) detached weights multiplying each token's clipped surrogate (not
            its KL term); ``None`` leaves the loss exactly as without weights.
        num_sequences: the completions of the whole step that ``grpo`` and ``dr_grpo`` average
            over (default: N, this batch alone).
        num_tokens: the completion tokens of the whole step that ``dapo`` divides by (default:
            this batch's).
    """
    mask = mask.to(logp.dtype)
    if old_logp is None:
        old_logp = logp.detach()
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * adv
    per_token = -torch.min(unclipped, clipped)
    if token_weights is not None:
        per_token = per_token * token_weights.to(per_token.dtype)
    kl_mean = 0.0
    if beta > 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference log-probabilities")
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1.0
        per_token = per_token + beta * kl
        kl_mean = float(((kl * mask).sum() / mask.sum().clamp(min=1.0)).detach())
    tokens = mask.sum().clamp(min=1.0)
    sequences = max(float(num_sequences if num_sequences is not None else logp.shape[0]), 1.0)
    if loss_type == "grpo":
        per_seq = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        loss = per_seq.sum() / sequences
    elif loss_type == "dr_grpo":
        length = max_completion_length or logp.shape[1]
        loss = (per_token * mask).sum() / (sequences * length)
    elif loss_type == "dapo":
        loss = (per_token * mask).sum() / (max(float(num_tokens), 1.0) if num_tokens is not None else tokens)
    else:
        raise ValueError(f"unknown loss type {loss_type!r}; expected grpo, dr_grpo or dapo")
    with torch.no_grad():
        was_clipped = ((ratio < 1.0 - clip_low) & (adv < 0)) | ((ratio > 1.0 + clip_high) & (adv > 0))
        clip_fraction = float((was_clipped.to(mask.dtype) * mask).sum() / tokens)
        ratio_mean = float((ratio * mask).sum() / tokens)
    return LossOutput(loss=loss, kl=kl_mean, clip_fraction=clip_fraction, ratio_mean=ratio_mean,
                      tokens=int(mask.sum()))


def completion_mask(completion: torch.Tensor, eos_ids: Sequence[int]) -> torch.Tensor:
    """1 for tokens up to and including the first end-of-turn token, 0 after it."""
    is_end = torch.zeros_like(completion, dtype=torch.bool)
    for i in eos_ids:
        is_end |= completion == i
    after_end = (is_end.long().cumsum(dim=1) - is_end.long()) > 0
    return (~after_end).long()


def truncated_importance_weights(
    old_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor, cap: float
) -> torch.Tensor:
    """Per-token truncated importance weights ``min(exp(old_logp - sampler_logp), cap)``.

    ``old_logp`` are the training policy's log-probabilities of the sampled tokens and
    ``sampler_logp`` those reported by the engine that sampled them (vLLM): the weight corrects
    for the two disagreeing (different kernels, precision), truncated at ``cap`` so a token the
    sampler found very unlikely cannot dominate the update. A token whose sampler log-probability
    is missing (NaN) gets weight 1; padding (``mask`` 0) gets 0. The result is detached.
    """
    with torch.no_grad():
        missing = torch.isnan(sampler_logp)
        delta = torch.where(missing, torch.zeros_like(old_logp), old_logp - sampler_logp)
        weights = torch.exp(delta).clamp(max=cap)
        return weights * mask.to(weights.dtype)


# Float32 elements of one chunk of log-softmax work in :func:`token_logprobs` (16 MiB; a chunk
# holds about three such tensors at once): 27 positions of a 151,936-token vocabulary, 4,096 of
# the tiny models' 1,024.
LOGPROB_CHUNK_ELEMENTS = 1 << 22


def token_logprobs(
    logits: torch.Tensor | Sequence[torch.Tensor],
    tokens: torch.Tensor,
    temperature: float = 1.0,
    blocked: Sequence[int] = (),
    chunk_positions: int | None = None,
) -> torch.Tensor:
    """log softmax(logits / temperature) at ``tokens``: (N, T, V), (N, T) -> (N, T) float32.

    ``logits`` may also be a sequence of T tensors (N, V), as ``generate`` returns its scores,
    so they are never stacked into one more (N, T, V) copy. ``blocked`` token ids (those
    suppressed while sampling, e.g. vision tokens) get no probability, so this is the
    distribution the tokens were really sampled from. The same function scores tokens at
    sampling time and in the training forward pass, so the two agree up to floating-point noise.

    Memory: a float32 (N, T, V) log-softmax of a 151,936-token vocabulary would cost gigabytes
    (and, kept for the backward pass, stay alive until it). The log-softmax and the gather are
    done a chunk of positions at a time (``chunk_positions``, default: as many as fit
    :data:`LOGPROB_CHUNK_ELEMENTS`), each chunk cast to float32 on its own; the backward pass
    recomputes each chunk's softmax from the saved logits and the (N, T) log-normalisers, so
    besides the logits themselves (in their own dtype) and their gradient nothing of size
    N x T x V is kept or built. The values are those of ``log_softmax(logits.float() /
    temperature)`` gathered at ``tokens``, and the gradient is ``(onehot - softmax) / temperature``
    (0 in the blocked columns), as autograd gives for the plain computation.
    """
    if not isinstance(logits, torch.Tensor):
        steps = list(logits)
        if len(steps) != tokens.shape[1]:
            raise ValueError(f"{len(steps)} score tensors for {tokens.shape[1]} tokens")
        if not steps:
            return torch.zeros(tokens.shape, dtype=torch.float32, device=tokens.device)
        return torch.cat([
            token_logprobs(step.unsqueeze(1), tokens[:, t : t + 1], temperature, blocked, chunk_positions)
            for t, step in enumerate(steps)
        ], dim=1)
    if logits.dim() != 3 or logits.shape[:2] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not fit tokens {tuple(tokens.shape)}")
    vocab = logits.shape[-1]
    chunk = chunk_positions or max(1, LOGPROB_CHUNK_ELEMENTS // max(vocab, 1))
    blocked_ids = torch.as_tensor(sorted(set(blocked)), dtype=torch.long, device=logits.device)
    return _SelectiveLogSoftmax.apply(logits, tokens.to(logits.device), float(temperature), blocked_ids, int(chunk))


def _scaled(logits: torch.Tensor, temperature: float, blocked: torch.Tensor) -> torch.Tensor:
    """One chunk (C, V) as float32 logits / temperature, blocked columns at -inf."""
    row = logits.float() / temperature
    if blocked.numel():
        row = row.index_fill(1, blocked, float("-inf"))
    return row


def _chunks(shape: torch.Size, chunk: int):
    """(row, start, end) of every chunk of positions, row by row (each a contiguous slice)."""
    rows, length = shape[0], shape[1]
    for n in range(rows):
        for start in range(0, length, chunk):
            yield n, start, min(start + chunk, length)


class _SelectiveLogSoftmax(torch.autograd.Function):
    """The sampled tokens' log-probabilities, chunk by chunk, with a recomputing backward pass."""

    @staticmethod
    def forward(ctx, logits, tokens, temperature, blocked, chunk):
        out = torch.empty(tokens.shape, dtype=torch.float32, device=logits.device)
        norm = torch.empty_like(out)
        for n, s, e in _chunks(tokens.shape, chunk):
            row = _scaled(logits[n, s:e], temperature, blocked)
            lse = torch.logsumexp(row, dim=-1)
            picked = torch.gather(row, 1, tokens[n, s:e].unsqueeze(-1)).squeeze(-1)
            out[n, s:e] = picked - lse
            norm[n, s:e] = lse
        ctx.save_for_backward(logits, tokens, norm, blocked)
        ctx.temperature, ctx.chunk = temperature, chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):
        logits, tokens, norm, blocked = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        temperature = ctx.temperature
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        grad_out = grad_out.float()
        for n, s, e in _chunks(tokens.shape, ctx.chunk):
            row = _scaled(logits[n, s:e], temperature, blocked)
            g = grad_out[n, s:e]
            # d/dx (x_token - logsumexp(x)) = onehot - softmax, times the chain rule's 1 / T
            part = torch.exp(row - norm[n, s:e].unsqueeze(-1)).mul_(-g.unsqueeze(-1))
            part.scatter_add_(1, tokens[n, s:e].unsqueeze(-1), g.unsqueeze(-1))
            if blocked.numel():
                part.index_fill_(1, blocked, 0.0)
            grad[n, s:e] = part.div_(temperature)
        return grad, None, None, None, None
