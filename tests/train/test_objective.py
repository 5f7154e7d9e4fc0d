import pytest
import torch

from hieroaction.train.objective import (
    group_advantages,
    policy_loss,
    token_logprobs,
    zero_spread_groups,
)


def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 2.0, 2.0, 5.0, 5.0])
    adv = group_advantages(rewards, group_size=2)
    assert adv[:2].tolist() == pytest.approx([1.0, -1.0], abs=1e-3)
    assert adv[2:4].tolist() == [0.0, 0.0]
    dr = group_advantages(rewards, group_size=2, loss_type="dr_grpo")
    assert dr.tolist() == pytest.approx([0.5, -0.5, 0.0, 0.0, 0.0, 0.0])
    assert zero_spread_groups(rewards, 2).tolist() == [False, True, True]
    with pytest.raises(ValueError):
        group_advantages(rewards, group_size=4)


def test_loss_at_ratio_one_is_minus_mean_advantage_and_gradient_flows():
    logp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.5, -0.5]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    out = policy_loss(logp, logp.detach(), adv, mask, loss_type="grpo")
    assert out.loss.item() == pytest.approx(0.0)
    out.loss.backward()
    # padding gets no gradient
    assert logp.grad[0].tolist() == pytest.approx([-0.25, -0.25, 0.0])  # -A / len / N
    assert logp.grad[1].tolist() == pytest.approx([1 / 6] * 3)


def test_aggregations_differ_as_documented():
    logp = torch.zeros(2, 4)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    adv = torch.tensor([1.0, 1.0])
    # per-token loss is -1 everywhere
    assert policy_loss(logp, logp, adv, mask, "grpo").loss.item() == pytest.approx(-1.0)
    assert policy_loss(logp, logp, adv, mask, "dapo").loss.item() == pytest.approx(-1.0)
    assert policy_loss(logp, logp, adv, mask, "dr_grpo", max_completion_length=8).loss.item() == pytest.approx(-6 / 16)


def test_clipping_and_kl():
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.5, 0.5]]))
    mask = torch.ones(1, 2)
    out = policy_loss(new, old, torch.tensor([1.0]), mask, clip_low=0.2, clip_high=0.2)
    # token 1: min(1.5, 1.2) = 1.2; token 2: min(0.5, 0.5) = 0.5
    assert out.loss.item() == pytest.approx(-(1.2 + 0.5) / 2)
    assert out.clip_fraction == pytest.approx(0.5)
    ref = torch.zeros(1, 2)
    with_kl = policy_loss(new, old, torch.tensor([1.0]), mask, beta=0.1, ref_logp=ref)
    kl = [(torch.exp(-x) + x - 1).item() for x in new[0]]
    assert with_kl.kl == pytest.approx(sum(kl) / 2)
    assert with_kl.loss.item() == pytest.approx(out.loss.item() + 0.1 * sum(kl) / 2)
    with pytest.raises(ValueError, match="reference"):
        policy_loss(new, old, torch.tensor([1.0]), mask, beta=0.1)


def test_token_logprobs_match_log_softmax():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    tokens = torch.randint(0, 11, (3, 5))
    expected = torch.gather((logits / 0.7).log_softmax(-1), 2, tokens.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(token_logprobs(logits, tokens, 0.7), expected, atol=1e-6)
