"""The harness's two loop orders on a scripted model: every attack on every
batch, and the cascade (the strong protocol's order), where each attack runs
only on the rows every earlier attack failed on, packed into full batches."""

import torch
import torch.nn.functional as F

from lfr_rs.evaluation.harness import run_attacks

CLASSES = 3


def model(x):
    """Predicts the class written in feature 0 (one-hot logits)."""
    return F.one_hot(x[:, 0].detach().long(), CLASSES).to(x.dtype)


def _data():
    # features: predicted class, fooled by "a", fooled by "b", row id; every label is 0
    x = torch.zeros(10, 4)
    x[:, 3] = torch.arange(10.0)
    x[[0, 1], 0] = 1  # clean-wrong
    x[[2, 5, 6], 1] = 1
    x[[3, 5, 9], 2] = 1
    return x, torch.zeros(10, dtype=torch.long)


def _table(seen, draws):
    def a(m, x, y):
        seen["a"].append(x[:, 3].long().tolist())
        draws["a"].append(float(torch.rand(1)))
        m(x)  # a forward without gradients
        out = x.clone()
        out[x[:, 1] > 0, 0] = 1
        return out

    def b(m, x, y):
        seen["b"].append(x[:, 3].long().tolist())
        draws["b"].append(float(torch.rand(1)))
        m(x.clone().requires_grad_())  # a forward that a kernel would differentiate
        out = x.clone()
        out[x[:, 2] > 0, 0] = 2
        return out

    return {"a": a, "b": b}


def test_cascade_attacks_only_the_survivors_of_every_earlier_attack():
    x, y = _data()
    seen, draws, classes = {"a": [], "b": []}, {"a": [], "b": []}, []
    table = _table(seen, draws)
    run = run_attacks(model, x, y, lambda c: classes.append(c) or table, batch_size=3, cascade=True, progress=False)
    assert classes == [CLASSES] and run.classes == CLASSES
    assert seen["a"] == [[2, 3, 4], [5, 6, 7], [8, 9]]  # the clean-correct rows
    assert seen["b"] == [[3, 4, 7], [8, 9]]  # those "a" failed on (5 is already fooled)
    assert run.forward == {"clean": 10, "a": 8 + 8, "b": 5 + 5}  # the attack's own forward, then the check
    assert run.backward == {"clean": 0, "a": 0, "b": 5}
    assert run.clean.tolist() == [False] * 2 + [True] * 8
    assert run.correct["a"].nonzero().squeeze(1).tolist() == [3, 4, 7, 8, 9]
    assert run.correct["b"].nonzero().squeeze(1).tolist() == [4, 7, 8]
    want = x.clone()
    want[[2, 5, 6], 0] = 1
    want[[3, 9], 0] = 2
    assert torch.equal(run.adversarial, want)  # the output that fooled the model, or the input


def test_default_order_attacks_every_row_of_every_batch():
    x, y = _data()
    seen, draws = {"a": [], "b": []}, {"a": [], "b": []}
    run = run_attacks(model, x, y, _table(seen, draws), batch_size=3, progress=False)
    assert seen["a"] == seen["b"] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert run.forward == {"clean": 10, "a": 20, "b": 20} and run.backward == {"clean": 0, "a": 0, "b": 10}
    assert run.correct["b"].nonzero().squeeze(1).tolist() == [2, 4, 6, 7, 8]  # a row counts alone per attack
    assert run.adversarial is None and not run.cascade


def test_cascade_seeds_before_each_attack_and_restores_the_callers_generator():
    x, y = _data()
    draws = {"a": [], "b": []}
    state = torch.get_rng_state()
    run_attacks(model, x, y, _table({"a": [], "b": []}, draws), batch_size=3, cascade=True, seed=7, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)
    first = float(torch.rand(1))
    assert draws["a"][0] == draws["b"][0] == first and draws["a"][1] != first
