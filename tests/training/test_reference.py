"""Weights files in research code's formats, and reference checkpoints by name
(``lfr_rs.models.load_reference``, ``lfr-rs eval reference:NAME``)."""

import json
from collections import OrderedDict

import pytest
import torch
from conftest import MNIST_ROOT
from torch import nn

from lfr_rs.experiments import table1
from lfr_rs.cli import main
from lfr_rs.models import (REFERENCE_DIR_ENV, SmallCNN, WeightsError, list_references, load_reference, load_weights,
                           reference_dir, reference_entry, state_dict_of)
from lfr_rs.experiments.table1.reference import export_reference
from lfr_rs.training import CHECKPOINT, load_checkpoint


def _net(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(zero_init_last=False).eval()


def _same(a, b):
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("wrap", [
    lambda m: m.state_dict(),
    lambda m: nn.DataParallel(m).state_dict(),
    lambda m: {"state_dict": nn.DataParallel(m).state_dict(), "epoch": 100},
    lambda m: {"model": m.state_dict(), "optimizer": {}},
], ids=["plain", "dataparallel", "state_dict-key", "model-key"])
def test_weights_files_in_the_usual_formats_load(tmp_path, wrap):
    source = _net(1)
    torch.save(wrap(source), tmp_path / "w.pt")
    target = load_weights(_net(2), tmp_path / "w.pt")
    assert _same(source, target)


def test_dataparallel_keys_lose_their_prefix():
    state = nn.DataParallel(_net()).state_dict()
    assert all(k.startswith("module.") for k in state)
    assert list(state_dict_of(state)) == list(_net().state_dict())


@pytest.mark.parametrize("obj, match", [
    ([1, 2], "holds list"), ({}, "empty dict"), ({"a": 1}, "not a state dict"),
    (torch.zeros(3), "holds Tensor"),
])
def test_anything_else_is_a_clear_error(tmp_path, obj, match):
    torch.save(obj, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match=match):
        load_weights(_net(), tmp_path / "w.pt")


def test_foreign_bytes_wrong_architecture_and_digest(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="not a readable torch file"):
        load_weights(_net(), tmp_path / "junk.pt")
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "lin.pt")
    with pytest.raises(WeightsError, match="does not fit SmallCNN"):
        load_weights(_net(), tmp_path / "lin.pt")
    torch.save(_net().state_dict(), tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="SHA-256"):
        load_weights(_net(), tmp_path / "w.pt", sha256="0" * 64)
    with pytest.raises(FileNotFoundError):
        load_weights(_net(), tmp_path / "missing.pt")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not MNIST_ROOT.is_dir():
        pytest.skip(f"MNIST test set not found under {MNIST_ROOT}")
    run_dir = tmp_path_factory.mktemp("table1")
    s = table1.resolve("tiny", "mnist", data_root=str(MNIST_ROOT), train_split="test", holdout=16,
                       methods=("standard", "at"))
    table1.run(s, run_dir, progress=False, verbose=False, png=False, command=["lfr-rs", "table1", "--tiny"])
    dest = tmp_path_factory.mktemp("reference")
    names = export_reference(run_dir, dest, repo_root=run_dir.parent)
    return run_dir, dest, names


def test_export_then_load_by_name(exported, monkeypatch):
    run_dir, dest, names = exported
    assert names == ["mnist/at", "mnist/standard"]
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(dest))
    assert reference_dir() == dest and list_references() == names
    index = json.loads((dest / "index.json").read_text())["checkpoints"]
    entry = index["mnist/at"]
    assert entry["seed"] == 1000 and entry["method"] == "at" and entry["command"] == "lfr-rs table1 --tiny"
    assert entry["results"]["n"] == 16 and entry["machine"] and entry["log"].endswith("at/log.json")
    model = load_reference("mnist/at")
    trained = SmallCNN(**entry["model"])
    trained.load_state_dict(load_checkpoint(run_dir / "at" / CHECKPOINT)["model"])
    assert not model.training and _same(model, trained)
    with pytest.raises(ValueError, match="unknown reference checkpoint 'mnist/lfr'; available: mnist/at"):
        load_reference("mnist/lfr")


def test_a_changed_reference_file_is_refused(exported, monkeypatch, tmp_path):
    _, dest, _ = exported
    copy = tmp_path / "ref"
    copy.mkdir()
    (copy / "index.json").write_text((dest / "index.json").read_text())
    (copy / "mnist").mkdir()
    data = bytearray((dest / "mnist" / "standard.pt").read_bytes())
    data[-100] ^= 1
    (copy / "mnist" / "standard.pt").write_bytes(bytes(data))
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(copy))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_reference("mnist/standard")


def test_no_index_says_where_to_point(monkeypatch, tmp_path):
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=REFERENCE_DIR_ENV):
        load_reference("fashion-mnist/lfr")


def test_cli_eval_of_a_reference(exported, monkeypatch, tmp_path, capsys):
    _, dest, _ = exported
    monkeypatch.setenv(REFERENCE_DIR_ENV, str(dest))
    out = tmp_path / "e.json"
    assert main(["eval", "reference:mnist/standard", "--n", "8", "--attacks", "fgsm", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["method"] == "standard" and record["results"]["n"] == 8 and record["split"] == "test[:16]"
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "reference:mnist/nothing", "--n", "8", "--json", str(out)])
    assert exit_.value.code == 2 and "unknown reference checkpoint" in capsys.readouterr().err


def test_committed_references_match_their_digests(monkeypatch):
    """Every checkpoint committed under results/reference loads by name with its digest checked."""
    monkeypatch.delenv(REFERENCE_DIR_ENV, raising=False)
    if not (reference_dir() / "index.json").is_file():
        pytest.skip("no reference checkpoints committed yet")
    for name in list_references():
        model = load_reference(name)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10), name


def test_committed_references_classify_as_recorded(monkeypatch):
    """Each committed reference model's clean accuracy on the evaluation images
    its table used equals the accuracy recorded in its index entry (within
    3 images: another CPU may round a borderline logit the other way)."""
    from lfr_rs.data import DEBIAN_FASHION_MNIST, load_fashion_mnist, load_mnist

    monkeypatch.delenv(REFERENCE_DIR_ENV, raising=False)
    if not (reference_dir() / "index.json").is_file():
        pytest.skip("no reference checkpoints committed yet")
    checked = 0
    for name in list_references():
        entry = reference_entry(name)
        dataset, n = entry["config"]["dataset"], entry["results"]["n"]
        if dataset == "mnist" and MNIST_ROOT.is_dir():
            x, y = load_mnist(MNIST_ROOT, train=False)
        elif dataset == "fashion-mnist" and DEBIAN_FASHION_MNIST.is_dir():
            x, y = load_fashion_mnist(DEBIAN_FASHION_MNIST, train=False)
        else:
            continue
        assert entry["config"]["train_split"] == "train" or entry["config"]["holdout"] >= n  # held-out images only
        with torch.no_grad():
            clean = (load_reference(name)(x[:n]).argmax(1) == y[:n]).double().mean().item()
        assert clean == pytest.approx(entry["results"]["clean"], abs=3 / n), name
        checked += 1
    if not checked:
        pytest.skip("neither dataset of the committed references is on this machine")
