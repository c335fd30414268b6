"""The fast loss computes exactly the loss and gradient of the plain full-logits loss."""

from __future__ import annotations

import pytest
import torch

from locollm.config import TrainConfig
from locollm.data.jsonl import Example
from locollm.train import peft_backend
from locollm.train.loss import _frozen_float32_head, causal_lm_loss, shared_prefix_len
from locollm.train.tokens import IGNORE, collate, tokenize_examples


@pytest.fixture(scope="module")
def model_and_batch(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    examples = [Example("Solve the following arithmetic word problem.", f"{a} + {a + 3}",
                        f"The answer is {2 * a + 3}.") for a in range(10, 16)]
    items = tokenize_examples(examples, tokenizer, 256)
    model = peft_backend.load_model(tiny_model, TrainConfig(lora_rank=4), "cpu")
    torch.manual_seed(1)
    for p in model.parameters():
        if p.requires_grad:  # LoRA B starts at 0: make the adapter matter
            torch.nn.init.normal_(p, std=0.05)
    return model, items


def loss_and_grad(model, ids, mask, labels, **kwargs):
    model.zero_grad()
    loss, n = causal_lm_loss(model, ids, mask, labels, **kwargs)
    loss.backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])
    return loss.detach(), n, grad


def reference_loss(model, ids, mask, labels):
    """What a plain HF training step computes: every logit, shifted, mean over labels."""
    model.zero_grad()
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    target = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             target.reshape(-1), ignore_index=IGNORE)
    loss.backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])
    return loss.detach(), grad


def test_shared_prefix_stops_before_the_first_label(model_and_batch):
    _, items = model_and_batch
    ids, _, labels = collate(items, 0)
    p = shared_prefix_len(ids, labels)
    first_label = min(e.answer_start for e in items)
    assert 8 <= p <= first_label - 1
    assert (ids[:, :p] == ids[0, :p]).all() and not (ids[:, :p + 1] == ids[0, :p + 1]).all()


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("cap", [None, 3.0], ids=["fused-head", "softcapped"])
def test_fast_loss_matches_full_logits_loss_and_gradient(model_and_batch, share, cap,
                                                         monkeypatch):
    model, items = model_and_batch
    config = model.get_base_model().config
    monkeypatch.setattr(config, "final_logit_softcapping", cap)
    ids, mask, labels = collate(items, 0)
    loss, n, grad = loss_and_grad(model, ids, mask, labels, share_prefix=share)
    ref_loss, ref_grad = reference_loss(model, ids, mask, labels)
    assert n == sum(e.n_answer for e in items)
    assert torch.allclose(loss, ref_loss, atol=1e-5)
    assert torch.allclose(grad, ref_grad, atol=1e-5, rtol=1e-4)
    assert grad.abs().max() > 1e-3  # the comparison is not between two zero vectors


def test_the_frozen_tied_head_takes_the_fused_path(model_and_batch):
    model, items = model_and_batch
    head = model.get_base_model().lm_head
    hidden = torch.zeros(3, head.in_features)
    assert _frozen_float32_head(hidden, head)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _frozen_float32_head(hidden, head)


def test_single_row_batches_do_not_share(model_and_batch):
    _, items = model_and_batch
    ids, _, labels = collate(items[:1], 0)
    assert shared_prefix_len(ids, labels) == 0
