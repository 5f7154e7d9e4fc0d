"""The loss of a step scored in chunks: the same value and gradient whatever the chunking."""

import pytest
import torch

from hieroaction.train.objective import policy_loss


def _batch():
    torch.manual_seed(0)
    logp = (-torch.rand(4, 5)).requires_grad_(True)
    old = logp.detach() + 0.1 * torch.randn(4, 5)
    # lengths 1, 5, 2, 4: aggregations by sequence and by token disagree
    mask = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    adv = torch.tensor([1.0, -0.5, 0.25, -0.75])
    ref = logp.detach() - 0.05
    return logp, old, mask, adv, ref


def _chunked(loss_type, chunk):
    logp, old, mask, adv, ref = _batch()
    total = 0.0
    for s in range(0, 4, chunk):
        sl = slice(s, s + chunk)
        out = policy_loss(logp[sl], old[sl], adv[sl], mask[sl], loss_type, beta=0.04, ref_logp=ref[sl],
                          max_completion_length=5, num_sequences=4, num_tokens=int(mask.sum()))
        total = total + out.loss
    total.backward()
    return float(total.detach()), logp.grad.clone()


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_chunk_losses_add_up_to_the_whole_batch_loss(loss_type):
    whole, whole_grad = _chunked(loss_type, 4)
    logp, old, mask, adv, ref = _batch()
    plain = policy_loss(logp, old, adv, mask, loss_type, beta=0.04, ref_logp=ref, max_completion_length=5)
    assert whole == pytest.approx(float(plain.loss.detach()), abs=1e-7)
    for chunk in (1, 2, 3):
        value, grad = _chunked(loss_type, chunk)
        assert value == pytest.approx(whole, abs=1e-6)
        assert torch.allclose(grad, whole_grad, atol=1e-7)


def test_dapo_is_a_token_mean_of_the_step_and_differs_from_grpo():
    logp = torch.zeros(2, 4, requires_grad=True)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    # per-token loss is -A: dapo (-1 + 4) / 5 tokens, grpo (-1 + 1) / 2 completions
    assert policy_loss(logp, None, adv, mask, "dapo").loss.item() == pytest.approx(3 / 5)
    assert policy_loss(logp, None, adv, mask, "grpo").loss.item() == pytest.approx(0.0)
    # one completion at a time with the step's token count: the same 3 / 5
    parts = [policy_loss(logp[i : i + 1], None, adv[i : i + 1], mask[i : i + 1], "dapo", num_tokens=5).loss
             for i in range(2)]
    assert sum(parts).item() == pytest.approx(3 / 5)
    # without it each chunk is its own token mean (the old behaviour): -1 + 1 = 0, which is grpo's
    alone = [policy_loss(logp[i : i + 1], None, adv[i : i + 1], mask[i : i + 1], "dapo").loss for i in range(2)]
    assert (sum(alone) / 2).item() == pytest.approx(0.0)


def test_no_old_logprobs_means_the_current_policy_detached():
    logp, old, mask, adv, _ = _batch()
    out = policy_loss(logp, None, adv, mask, "grpo")
    assert out.ratio_mean == 1.0 and out.clip_fraction == 0.0 and out.tokens == int(mask.sum())
    out.loss.backward()
    grad = logp.grad.clone()
    logp.grad = None
    policy_loss(logp, logp.detach(), adv, mask, "grpo").loss.backward()
    assert torch.equal(grad, logp.grad)
