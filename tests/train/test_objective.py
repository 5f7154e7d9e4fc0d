import pytest
import torch

from hieroaction.train.objective import (
    group_advantages,
    policy_loss,
    token_logprobs,
    truncated_importance_weights,
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


def _loss_inputs():
    torch.manual_seed(1)
    old = torch.randn(3, 5) * 0.3 - 1.0
    logp = (old + torch.randn(3, 5) * 0.4).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    adv = torch.tensor([1.0, -0.5, 2.0])
    return logp, old, adv, mask


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_token_weights_of_one_leave_the_loss_exactly_unchanged(loss_type):
    logp, old, adv, mask = _loss_inputs()
    ref = old - 0.1
    plain = policy_loss(logp, old, adv, mask, loss_type, beta=0.05, ref_logp=ref)
    ones = policy_loss(logp, old, adv, mask, loss_type, beta=0.05, ref_logp=ref, token_weights=torch.ones(3, 5))
    assert torch.equal(plain.loss, ones.loss)
    assert (plain.kl, plain.clip_fraction, plain.ratio_mean) == (ones.kl, ones.clip_fraction, ones.ratio_mean)


def test_a_token_weight_scales_that_tokens_surrogate_and_not_its_kl():
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.1, 0.9]]))
    mask = torch.ones(1, 2)
    adv = torch.tensor([1.0])
    weights = torch.tensor([[0.5, 2.0]])
    out = policy_loss(new, old, adv, mask, "dapo", token_weights=weights)
    # per-token surrogates -1.1 and -0.9 (no clipping at 0.2), weighted 0.5 and 2.0, token mean
    assert out.loss.item() == pytest.approx(-(0.5 * 1.1 + 2.0 * 0.9) / 2)
    ref = torch.zeros(1, 2)
    kl = sum((torch.exp(-x) + x - 1).item() for x in new[0])
    with_kl = policy_loss(new, old, adv, mask, "dapo", beta=0.1, ref_logp=ref, token_weights=weights)
    assert with_kl.loss.item() == pytest.approx(out.loss.item() + 0.1 * kl / 2)
    # the weight scales the gradient of its token's surrogate
    logp = new.clone().requires_grad_(True)
    policy_loss(logp, old, adv, mask, "dapo", token_weights=weights).loss.backward()
    unweighted = new.clone().requires_grad_(True)
    policy_loss(unweighted, old, adv, mask, "dapo").loss.backward()
    assert torch.allclose(logp.grad, unweighted.grad * weights)


def test_truncated_importance_weights_cap_and_missing_values():
    old = torch.tensor([[-1.0, -1.0, -2.0, -0.5]])
    sampler = torch.tensor([[-1.0, -1.5, -0.5, float("nan")]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = truncated_importance_weights(old, sampler, mask, cap=1.5)
    assert w[0, 0].item() == pytest.approx(1.0)  # the two agree
    assert w[0, 1].item() == pytest.approx(1.5)  # exp(0.5) = 1.65 is capped
    assert w[0, 2].item() == pytest.approx(float(torch.exp(torch.tensor(-1.5)).item()))  # below 1: kept
    assert w[0, 3].item() == 0.0  # padding
    nan_real = truncated_importance_weights(old, sampler, torch.ones(1, 4), cap=2.0)
    assert nan_real[0, 3].item() == 1.0  # a missing sampler log-probability: no correction
    assert not w.requires_grad
