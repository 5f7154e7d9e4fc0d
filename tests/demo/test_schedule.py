"""The SFT learning-rate schedule on a wall clock, and its deadline."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hieroaction.errors import ConfigError


def test_schedule_shapes():
    from hieroaction.demo.schedule import schedule_factor

    assert schedule_factor("cosine", 0.0, 0.1) == 0.0
    assert schedule_factor("cosine", 0.05, 0.1) == pytest.approx(0.5)
    assert schedule_factor("cosine", 0.1, 0.1) == pytest.approx(1.0)
    assert schedule_factor("cosine", 0.55, 0.1) == pytest.approx(0.5)
    assert schedule_factor("cosine", 1.0, 0.1) == pytest.approx(0.0)
    assert schedule_factor("cosine", 3.0, 0.1) == pytest.approx(0.0)  # past the end: clamped
    assert schedule_factor("linear", 0.5, 0.0) == pytest.approx(0.5)
    assert schedule_factor("constant", 0.9, 0.2) == 1.0
    with pytest.raises(ConfigError, match="polynomial"):
        schedule_factor("polynomial", 0.5, 0.0)


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_callback_anneals_over_the_time_and_stops_before_the_deadline():
    import torch

    from hieroaction.demo.schedule import WallClockSchedule

    now = FakeTime()
    logged = []
    callback = WallClockSchedule(stop_at=100.0, shape="cosine", warmup=0.1, evaluations=3,
                                 on_log=lambda step, logs: logged.append((step, logs)), now=now, margin_s=0.0)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)  # transformers' "constant"
    args = None
    state = SimpleNamespace(global_step=0)
    callback.on_train_begin(args, state, SimpleNamespace(), optimizer=optimizer, lr_scheduler=scheduler)
    assert optimizer.param_groups[0]["lr"] == 0.0  # warm-up starts at 0
    evaluations, stopped_at = [], None
    for _ in range(100):
        control = SimpleNamespace(should_training_stop=False, should_evaluate=False)
        callback.on_step_begin(args, state, control, optimizer=optimizer)
        now.t += 9.0  # every step takes 9 s
        optimizer.step()
        scheduler.step()
        state.global_step += 1
        callback.on_step_end(args, state, control)
        if control.should_evaluate:
            evaluations.append(state.global_step)
            now.t += 2.0
            callback.on_evaluate(args, state, control)
        if control.should_training_stop:
            stopped_at = now.t
            break
    lrs = [lr for _, lr in callback.lr_history]
    assert max(lrs) == pytest.approx(0.5, rel=0.05)  # the peak is the recipe's rate
    assert lrs[-1] < 0.1 * 0.5  # annealed by the end
    assert callback.stopped_by_deadline and stopped_at is not None
    assert stopped_at <= 100.0  # the last step plus the final validation fit
    assert len(evaluations) == 3 and evaluations[-1] == state.global_step
    callback.on_log(args, state, SimpleNamespace(), logs={"loss": 1.0})
    assert logged == [(state.global_step, {"loss": 1.0})]


def test_callback_refuses_a_non_lambda_schedule():
    import torch

    from hieroaction.demo.schedule import WallClockSchedule

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.5)
    step_lr = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    with pytest.raises(ConfigError, match="constant"):
        WallClockSchedule(stop_at=10.0).on_train_begin(None, None, None, optimizer=optimizer, lr_scheduler=step_lr)
