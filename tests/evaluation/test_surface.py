"""The surface kernels against the plain grid loop of tests/reference/surface.py,
the decision value's sign against the model's predictions, and bad inputs."""

import pytest
import torch
from torch import nn

import lfr_rs
from tests.reference import surface as ref


def small_images(n=2, seed=3):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=gen), torch.tensor([3, 7, 1, 0][:n])


@pytest.mark.parametrize("kind", ["decision", "loss"])
def test_surface_matches_grid_loop_float64(default_cnn64, kind):
    x, y = small_images()
    x = x.double()
    u, v = lfr_rs.surface_directions(default_cnn64, x, y)
    got = lfr_rs.surface(default_cnn64, x, y, u, v, span=0.3, steps=7, kind=kind, batch_size=13)
    want = ref.surface(default_cnn64, x, y, u, v, span=0.3, steps=7, kind=kind)
    assert got.shape == (2, 7, 7) and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["decision", "loss"])
def test_surface_matches_grid_loop_float32(untrained_cnn, kind):
    x, y = small_images()
    u, v = lfr_rs.surface_directions(untrained_cnn, x, y)
    got = lfr_rs.surface(untrained_cnn, x, y, u, v, span=0.5, steps=5, kind=kind)
    want = ref.surface(untrained_cnn, x, y, u, v, span=0.5, steps=5, kind=kind)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)  # float32 defaults: rtol 1.3e-6, atol 1e-5


def test_batch_size_does_not_change_values(untrained_cnn):
    x, y = small_images(3)
    u, v = lfr_rs.surface_directions(untrained_cnn, x, y)
    whole = lfr_rs.surface(untrained_cnn, x, y, u, v, span=0.2, steps=6, batch_size=10_000)
    for bs in (1, 7, 36):
        torch.testing.assert_close(lfr_rs.surface(untrained_cnn, x, y, u, v, span=0.2, steps=6, batch_size=bs), whole)


def test_decision_sign_equals_correctness(untrained_cnn):
    x, y = small_images(4)
    u, v = lfr_rs.surface_directions(untrained_cnn, x, y)
    span, steps = 1.0, 9
    values = lfr_rs.surface(untrained_cnn, x, y, u, v, span=span, steps=steps)
    coords = torch.linspace(-span, span, steps)
    a = coords.view(1, steps, 1, 1, 1, 1)
    b = coords.view(1, 1, steps, 1, 1, 1)
    points = (x[:, None, None] + a * u[:, None, None] + b * v[:, None, None]).clamp(0, 1)
    with torch.no_grad():
        pred = untrained_cnn(points.flatten(0, 2)).argmax(1).view(len(x), steps, steps)
    correct = pred == y[:, None, None]
    assert ((values > 0) == correct).all()
    assert correct.any() and (~correct).any(), "the grid should reach both sides of the boundary"
    # the centre of an odd grid is the clean input itself
    with torch.no_grad():
        clean_ok = untrained_cnn(x).argmax(1) == y
    assert ((values[:, steps // 2, steps // 2] > 0) == clean_ok).all()


def test_directions_match_reference(default_cnn64):
    x, y = small_images(4)
    x = x.double()
    torch.manual_seed(11)
    u, v = lfr_rs.surface_directions(default_cnn64, x, y)
    torch.manual_seed(11)
    r = (torch.rand_like(x) < 0.5).to(x.dtype) * 2 - 1
    want_u, want_v = ref.directions(default_cnn64, x, y, r)
    assert torch.equal(u, want_u)
    torch.testing.assert_close(v, want_v, rtol=1e-12, atol=1e-12)
    assert torch.equal(u.abs().flatten(1).amax(1), torch.ones(len(x), dtype=x.dtype))
    assert torch.equal(v.abs().flatten(1).amax(1), torch.ones(len(x), dtype=x.dtype))
    torch.testing.assert_close((u * v).flatten(1).sum(1), torch.zeros(len(x), dtype=x.dtype), atol=1e-9, rtol=0)


def test_directions_repeat_under_manual_seed(untrained_cnn):
    x, y = small_images()
    torch.manual_seed(5)
    first = lfr_rs.surface_directions(untrained_cnn, x, y)
    torch.manual_seed(5)
    second = lfr_rs.surface_directions(untrained_cnn, x, y)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_inputs_are_not_modified_and_empty_batches(untrained_cnn):
    x, y = small_images()
    u, v = lfr_rs.surface_directions(untrained_cnn, x, y)
    copies = [t.clone() for t in (x, y, u, v)]
    lfr_rs.surface(untrained_cnn, x, y, u, v, span=0.1, steps=3)
    assert all(torch.equal(a, b) for a, b in zip(copies, (x, y, u, v)))
    empty = lfr_rs.surface(untrained_cnn, x[:0], y[:0], u[:0], v[:0], span=0.1, steps=3)
    assert empty.shape == (0, 3, 3)


class Zero(nn.Module):
    """Logits that do not depend on the input: a zero input gradient."""

    def forward(self, x):
        return x.flatten(1)[:, :3] * 0.0


def test_bad_inputs_raise_typed_errors(untrained_cnn):
    x, y = small_images()
    u, v = lfr_rs.surface_directions(untrained_cnn, x, y)
    call = lambda **kw: lfr_rs.surface(untrained_cnn, kw.pop("x", x), kw.pop("y", y), kw.pop("u", u),  # noqa: E731
                                       kw.pop("v", v), **{"span": 0.1, "steps": 3, **kw})
    with pytest.raises(ValueError, match="decision"):
        call(kind="logit")
    with pytest.raises(ValueError, match="steps"):
        call(steps=1)
    with pytest.raises(ValueError, match="span"):
        call(span=-1.0)
    with pytest.raises(ValueError, match="span"):
        call(span=float("nan"))
    with pytest.raises(ValueError, match="batch_size"):
        call(batch_size=0)
    with pytest.raises(lfr_rs.ShapeError, match="u must have"):
        call(u=u[:1])
    with pytest.raises(lfr_rs.ShapeError, match="labels"):
        call(y=y[:1])
    with pytest.raises(TypeError, match="dtype"):
        call(v=v.double())
    with pytest.raises(ValueError, match="NaN"):
        call(v=v * float("nan"))
    with pytest.raises(ValueError, match="out of range"):
        call(y=y + 20)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        call(x=x + 2)
    with pytest.raises(TypeError):
        call(u="up")
    with pytest.raises(ValueError, match="exactly zero"):
        lfr_rs.surface_directions(Zero(), x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="margin"):
        lfr_rs.surface_directions(untrained_cnn, x, y, loss="hinge")


def test_model_errors_come_back_unchanged(untrained_cnn):
    class Boom(Exception):
        pass

    def broken(_):
        raise Boom("no")

    x, y = small_images()
    u, v = lfr_rs.surface_directions(untrained_cnn, x, y)
    with pytest.raises(Boom):
        lfr_rs.surface(broken, x, y, u, v, span=0.1, steps=3)
