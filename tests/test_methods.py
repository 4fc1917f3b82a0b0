"""Every method does what the paper describes, observed on the weights and the task logs."""
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny
from dynnn_lib import run
from dynnn_lib.data import load_stream
from dynnn_lib.evaluation.outputs import Before
from dynnn_lib.methods import kd_loss, train_task
from dynnn_lib.methods.dynamicnn.frozen_trunk import ce_loss, pick_head
from dynnn_lib.model.network import DynamicNet
from dynnn_lib.model.build import build_model


def _stream(cfg):
    return load_stream(cfg.data)


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_finetune_trains_trunk_on_every_task():
    cfg = tiny(method="finetune")
    s = _stream(cfg)
    model = build_model(cfg, s.n_classes)
    train_task(model, s.tasks[0], cfg, torch.device("cpu"))
    before = _params(model.trunk)
    log = train_task(model, s.tasks[1], cfg, torch.device("cpu"))
    assert log.action == "finetune" and len(model.heads) == 1
    assert not _same(before, _params(model.trunk))


def test_kd_freezes_trunk_and_trains_only_the_chosen_head():
    cfg = tiny(method="kd")
    s = _stream(cfg)
    model = build_model(cfg, s.n_classes)
    train_task(model, s.tasks[0], cfg, torch.device("cpu"))
    trunk, head = _params(model.trunk), _params(model.heads[0])
    log = train_task(model, s.tasks[1], cfg, torch.device("cpu"))
    assert log.action == "kd" and log.head == 0 and len(model.heads) == 1
    assert _same(trunk, _params(model.trunk))
    assert not _same(head, _params(model.heads[0]))
    assert 0.0 <= log.extra["known_fraction"] <= 1.0 and log.note.startswith("known ")


def test_expand_adds_a_head_at_the_given_tasks_only():
    cfg = tiny(method="combined", expand_at=[2], data={"n_tasks": 4})
    s = _stream(cfg)
    model = build_model(cfg, s.n_classes)
    actions = []
    for task in s.tasks:
        before_heads = [_params(h) for h in model.heads]
        trunk = _params(model.trunk)
        log = train_task(model, task, cfg, torch.device("cpu"))
        actions.append(log.action)
        if task.index > 0:
            assert _same(trunk, _params(model.trunk))
        if log.action == "expand":  # old heads untouched, new head is the one trained
            assert all(_same(b, _params(h)) for b, h in zip(before_heads, model.heads))
            assert log.head == len(model.heads) - 1
    assert actions == ["full", "kd", "expand", "kd"]
    assert len(model.heads) == 2


def test_expand_method_finetunes_newest_head_without_kd():
    cfg = tiny(method="expand", expand_at=[1])
    s = _stream(cfg)
    model = build_model(cfg, s.n_classes)
    logs = [train_task(model, t, cfg, torch.device("cpu")) for t in s.tasks]
    assert [l.action for l in logs] == ["full", "expand", "head_ce"]
    assert logs[2].head == 1


def test_new_head_starts_as_copy_or_from_scratch():
    cfg = tiny(method="combined", expand_at=[1])
    model = DynamicNet(cfg, 4)
    i = model.add_head(0)
    assert _same(_params(model.heads[0]), _params(model.heads[i]))
    j = model.add_head(None)
    assert not _same(_params(model.heads[0]), _params(model.heads[j]))


def test_automatic_expansion_follows_the_threshold(runs_dir):
    cfg_always = tiny(method="combined", expand_threshold=1.0)   # accuracy < 100 %: always expand
    assert run(cfg_always, runs_dir=runs_dir).expanded_at == [1, 2]
    before = Before(acc=0.5, head_acc=[0.5], known=torch.ones(3, dtype=torch.bool), routed=[1.0])
    for threshold, action in ((0.4, "kd"), (0.6, "expand")):
        cfg = tiny(method="combined", expand_threshold=threshold)
        ctx = SimpleNamespace(t=1)  # choose reads only the task index here
        assert cfg.method_class()(cfg, cfg.params()).choose(ctx, before) == action


def test_pick_head_best_and_worst():
    assert pick_head([0.2, 0.9, 0.5], "best") == 1
    assert pick_head([0.2, 0.9, 0.5], "worst") == 0
    assert pick_head([0.7, 0.7], "best") == 1  # ties go to the newest head
    assert pick_head([0.2, 0.9, 0.5], "routed", routed=[0.7, 0.1, 0.2]) == 0  # where most of the task routes


def test_kd_loss_is_zero_for_identical_outputs_and_positive_otherwise():
    a = torch.randn(5, 4)
    assert kd_loss(a, a.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(a, torch.randn(5, 4), 2.0).item() > 0
    assert kd_loss(a[:0], a[:0], 2.0).item() == 0.0


def test_ce_on_unknown_only_ignores_known_samples():
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    known = torch.tensor([True, True, False, False])
    assert ce_loss(logits, y, known, "unknown").item() == pytest.approx(F.cross_entropy(logits[2:], y[2:]).item())
    assert ce_loss(logits, y, known, "all").item() == pytest.approx(F.cross_entropy(logits, y).item())
    assert ce_loss(logits, y, torch.ones(4, dtype=torch.bool), "unknown").item() == 0.0


@pytest.mark.parametrize("mode", ["max_conf", "mean_prob", "last", "router"])
def test_head_rules_on_hand_made_logits(mode):
    from dynnn_lib.evaluation.routing import combine

    logits = torch.tensor([[[5.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]]])  # head 0 confident on class 0, head 1 on class 1
    routed = torch.tensor([1])                                     # the router sends the image to head 1
    expected = {"max_conf": 0, "mean_prob": 0, "last": 1, "router": 1}[mode]
    assert combine(mode, logits, routed).item() == expected


def test_lr_trick_uses_the_small_learning_rate_on_incremental_tasks():
    cfg = tiny(method="kd")
    assert cfg.replace(lr_trick=True).incremental_lr() == cfg.lr_trick_lr
    s = _stream(cfg)
    base = build_model(cfg, s.n_classes)
    train_task(base, s.tasks[0], cfg, torch.device("cpu"))

    def head_change(c):
        model = copy.deepcopy(base)
        start = _params(model.heads[0])
        train_task(model, s.tasks[1], c, torch.device("cpu"))
        return sum((a - b).abs().sum().item() for a, b in zip(start, _params(model.heads[0])))

    normal, trick = head_change(cfg), head_change(cfg.replace(lr_trick=True, lr_trick_lr=cfg.inc_lr / 100))
    assert 0 < trick < normal / 20   # Adam steps scale with the learning rate


def test_resnet18_backbone_with_groupnorm_runs():
    cfg = tiny(backbone="resnet18", data={"n_tasks": 2, "image_size": 32, "train_per_class": 2, "test_per_class": 2})
    model = build_model(cfg, 4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 4)


def test_no_batchnorm_in_the_default_model():
    model = build_model(tiny(), 4)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ------------------------------------------------------------------ the loss gets the batch it trains on
def test_the_loss_gets_its_batch_with_labels_and_the_methods_own_tensors_aligned():
    """fit hands the loss each batch: its inputs as the network saw them, labels and every tensor the method added,
    row for row (here a per-sample tag equal to the sample's position and labels equal to it modulo 3)."""
    from dynnn_lib.methods.training import Samples, fit

    n = 37
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).repeat(1, 2, 1, 1)
    y = torch.arange(n) % 3
    seen = []

    def loss_fn(out, batch):
        assert torch.equal(batch.tag, batch.idx.float()) and torch.equal(batch.y, batch.idx % 3)
        assert torch.equal(batch.x[:, 0, 0, 0], batch.idx.float())
        seen.extend(batch.idx.tolist())
        return F.cross_entropy(out, batch.y)

    fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 3)), loss_fn, Samples(x, y, tag=torch.arange(n, dtype=torch.float32)), epochs=2, lr=0.01,
        milestones=(), gamma=0.1, batch_size=8, augment=False, gen=torch.Generator().manual_seed(0),
        device=torch.device("cpu"))
    assert sorted(seen) == sorted(list(range(n)) * 2)  # every sample once per epoch
    with pytest.raises(AttributeError, match="the batch has no 'teacher'; it has x, y, idx, tag"):
        from dynnn_lib.methods.training import Batch
        Batch(x, y, torch.arange(n), {"tag": y}).teacher
    with pytest.raises(ValueError, match="tag has 3 rows, the inputs 37"):
        Samples(x, y, tag=torch.zeros(3))


def test_replay_batches_carry_their_memory_rows_and_labels(tmp_path, monkeypatch):
    """Replay adds memory images to each batch itself: the batch has batch_size more rows than the task's indices,
    marked in from_memory, their labels with them (no side channel on the sampler)."""
    cfg = tiny(method="replay", method_params={"memory": 5})
    seen = []
    real = F.cross_entropy

    def spy(out, labels, *a, **k):
        seen.append((len(out), len(labels)))
        return real(out, labels, *a, **k)

    monkeypatch.setattr(F, "cross_entropy", spy)
    run(cfg, tmp_path)
    assert seen and all(o == l for o, l in seen)
    assert {o for o, _ in seen} >= {cfg.batch_size + cfg.batch_size}  # a full batch of the task + k memory rows
