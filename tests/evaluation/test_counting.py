"""PassCounter.charged: the one place passes and seconds are booked."""

from dataclasses import dataclass, field
from typing import Dict

import pytest
import torch

from lfr_rs.evaluation.counting import PassCounter


@dataclass
class _Book:
    forward: Dict[str, int] = field(default_factory=dict)
    backward: Dict[str, int] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))


def test_charged_books_forwards_backwards_and_adds_to_the_name() -> None:
    counter, book = PassCounter(_model()), _Book()
    x = torch.rand(5, 4)
    with counter.charged(book, "a") as m:
        with torch.no_grad():
            m(x)
        m(x.clone().requires_grad_(True)).sum().backward()
    assert (book.forward["a"], book.backward["a"]) == (10, 5)
    with counter.charged(book, "a") as m, torch.no_grad():
        m(x[:2])
    with counter.charged(book, "b"):
        pass
    assert book.forward == {"a": 12, "b": 0} and book.backward == {"a": 5, "b": 0}
    assert book.seconds["a"] > 0.0 and set(book.seconds) == {"a", "b"}


def test_charged_books_what_was_spent_before_an_error() -> None:
    counter, book = PassCounter(_model()), _Book()
    with pytest.raises(RuntimeError, match="stop"):
        with counter.charged(book, "a") as m, torch.no_grad():
            m(torch.rand(3, 4))
            raise RuntimeError("stop")
    assert book.forward == {"a": 3} and book.backward == {"a": 0}
