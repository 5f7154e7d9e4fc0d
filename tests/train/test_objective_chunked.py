"""token_logprobs computes the sampled tokens' log-probabilities chunk by chunk: the same values
and gradients as the plain full log-softmax, without a float32 (N, T, V) tensor."""

from __future__ import annotations

import pytest
import torch

from hieroaction.train.objective import token_logprobs


def plain(logits, tokens, temperature=1.0, blocked=()):
    """The straightforward computation: one float32 log-softmax of the whole batch."""
    x = logits.float() / temperature
    if blocked:
        x = x.index_fill(-1, torch.tensor(list(blocked)), float("-inf"))
    return torch.log_softmax(x, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _case(seed=0, n=3, t=7, v=50, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(n, t, v, generator=g)).to(dtype)
    tokens = torch.randint(5, v, (n, t), generator=g)  # ids 0..4 may be blocked: never sampled
    return logits, tokens


@pytest.mark.parametrize("chunk", [None, 1, 3, 100])
@pytest.mark.parametrize("temperature,blocked", [(1.0, ()), (0.7, (0, 2, 4))])
def test_values_and_gradients_equal_the_plain_log_softmax(chunk, temperature, blocked):
    logits, tokens = _case()
    weights = torch.randn(tokens.shape)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = token_logprobs(a, tokens, temperature, blocked, chunk_positions=chunk)
    ref = plain(b, tokens, temperature, blocked)
    assert ours.dtype == torch.float32 and ours.shape == tokens.shape
    assert torch.allclose(ours, ref, atol=1e-5, rtol=0)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=0)
    if blocked:
        assert (a.grad[..., list(blocked)] == 0).all()


def test_a_slice_of_larger_logits_and_generate_style_score_lists():
    logits, tokens = _case(seed=1, t=8)
    sliced = logits[:, :-1]  # not contiguous over the batch
    assert torch.allclose(token_logprobs(sliced, tokens[:, :-1], chunk_positions=2),
                          plain(sliced, tokens[:, :-1]), atol=1e-5, rtol=0)
    steps = [logits[:, i] for i in range(logits.shape[1])]  # generate's out.scores
    assert torch.equal(token_logprobs(steps, tokens, 0.9, (1,)), token_logprobs(logits, tokens, 0.9, (1,)))
    with pytest.raises(ValueError, match="score tensors"):
        token_logprobs(steps[:-1], tokens)


def test_bf16_logits_give_the_float32_log_softmax_of_their_values():
    logits, tokens = _case(seed=2, dtype=torch.bfloat16)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = token_logprobs(a, tokens, 0.8, chunk_positions=2)
    ref = plain(b, tokens, 0.8)
    assert ours.dtype == torch.float32 and torch.allclose(ours, ref, atol=1e-5, rtol=0)
    ours.sum().backward()
    ref.sum().backward()
    assert a.grad.dtype == torch.bfloat16
    assert torch.allclose(a.grad.float(), b.grad.float(), atol=1e-5, rtol=1e-2)


def _saved_bytes(fn):
    """Bytes of the tensors autograd keeps for the backward pass of ``fn()``."""
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(saved), out


def test_no_float32_batch_by_tokens_by_vocab_tensor_is_kept_for_backward():
    n, t, v = 2, 16, 4096
    logits = torch.randn(n, t, v, dtype=torch.bfloat16, requires_grad=True)
    tokens = torch.randint(0, v, (n, t))
    full_fp32 = n * t * v * 4
    ours, _ = _saved_bytes(lambda: token_logprobs(logits, tokens, 1.0, (7,), chunk_positions=4))
    ref, _ = _saved_bytes(lambda: plain(logits, tokens, 1.0, (7,)))
    # ours: the bf16 logits themselves (half a float32 copy) and a few (N, T) tensors
    assert ours <= full_fp32 // 2 + 64 * n * t
    assert ref >= full_fp32


def test_on_the_tiny_model_fp32(tmp_path):
    """The tiny Qwen2.5-VL's own logits: values and parameter gradients as the plain computation."""
    from hieroaction.models import load_model_and_processor
    from hieroaction.models.tiny import build_tiny
    from tests.models.clips import make_clip, video_messages

    model, processor = load_model_and_processor(build_tiny("qwen2_5_vl", tmp_path / "tiny"))
    inputs = processor(video_messages(), make_clip(4, seed=0))
    tokens = torch.randint(0, 900, (1, 12), generator=torch.Generator().manual_seed(0))
    inputs["input_ids"] = torch.cat([inputs["input_ids"], tokens], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(tokens)], dim=1)
    inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(tokens)], dim=1)
    blocked = [processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")]
    grads = []
    values = []
    for fn in (lambda x: token_logprobs(x, tokens, 0.7, blocked, chunk_positions=5),
               lambda x: plain(x, tokens, 0.7, blocked)):
        model.zero_grad()
        logits = model(**inputs, use_cache=False, logits_to_keep=13).logits[:, :-1]
        out = fn(logits)
        out.sum().backward()
        values.append(out.detach())
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    assert torch.allclose(values[0], values[1], atol=1e-5, rtol=0)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for key, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][key], atol=1e-5, rtol=1e-4), key
