"""Train one model under a budget: L1 (+ the family's extra terms), Adam, LR schedule, seeds.

    from search.models import create_model
    from search.train import train_model

    model = create_model("eSR-TM_s2_K3_C4")
    result = train_model(model, "quick", seed=0, out_dir="runs/tm")
    # {"train_time_s": ..., "steps": ..., "final_loss": ..., "weights_path": "runs/tm/weights.pt", ...}

Determinism: with ``reinit=True`` (default) the initial weights are re-drawn under ``seed``
by rebuilding the model from its ``model_id``, so the result does not depend on the global
RNG state when the model was created; patches come from a generator seeded with ``seed``;
``torch``, ``numpy`` and ``random`` are seeded too (for models that draw random numbers in
their training step). Same seed + same budget + same machine -> identical weights and loss.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from search.data.training import NeighbourhoodBank, PatchSampler
from search.errors import UserError
from search.models.registry import create_model, resolve_protocol
from search.models.weights import save_weights
from search.train.budgets import learning_rate_at, resolve_budget
from search.train.losses import training_loss
from search.train.pixelwise import PixelwiseObjective, supports_pixelwise


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite, or ended far above where it started (the
    study records the trial as failed)."""


# A run whose final loss is this many times the untrained model's loss (its first step) has
# blown up, even when every value stayed finite (lr 1e8: 7 dB, loss ~1e7). Training that
# works lowers the loss; a scheduled loss term (a sparsity or depth weight ramp) raises it
# by a fraction, never tenfold.
DIVERGENCE_FACTOR = 10.0


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` (legacy global RNG) and ``torch``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def protocol_for(model: nn.Module, protocol: str | None = None):
    """The evaluation protocol whose gray recipe a gray model is trained with.

    Training data for a gray model is made exactly like the test input of the protocol it
    is scored with by default (``search.models.registry.resolve_protocol``: the model's or
    its family's default protocol; ``esr`` for the eSR-paper families, whose gray is BT.601
    on the BGR-ordered array; ``standard`` otherwise).
    """
    return resolve_protocol(model, protocol)


def reinitialise_from_id(model: nn.Module, seed: int) -> bool:
    """Replace the weights by those of a fresh ``create_model(model.model_id)`` under ``seed``.

    Returns False (weights untouched) for models without an id or whose rebuild differs in
    structure (e.g. built with extra keyword arguments).
    """
    model_id = getattr(model, "model_id", "")
    if not model_id:
        return False

    torch.manual_seed(seed)
    try:
        fresh = create_model(model_id)
    except UserError:
        return False
    own, new = model.state_dict(), fresh.state_dict()
    if own.keys() != new.keys() or any(own[k].shape != new[k].shape for k in own):
        return False
    model.load_state_dict(new)
    return True


def _model_name(model: nn.Module) -> str:
    return getattr(model, "model_id", "") or type(model).__name__


def train_model(model: nn.Module, budget: str | dict, *, train_sets=("T91",), seed: int = 0,
                device: str | torch.device = "cpu", data_root=None, progress: bool = True,
                out_dir: str | os.PathLike | None = None, reinit: bool = True,
                protocol: str | None = None) -> dict:
    """Train ``model`` in place under ``budget`` (a name in ``params.yaml`` or a dict).

    Returns ``{"train_time_s", "steps", "final_loss", "weights_path", ...}``; ``final_loss``
    is the mean total loss over the last ``final_loss_window`` fraction of steps. Saves the
    state dict to ``out_dir/weights.pt`` (and the loss curve to ``out_dir/train_log.json``)
    when ``out_dir`` is given. Raises :class:`TrainingDiverged` on a NaN/inf loss, or when the
    final loss is :data:`DIVERGENCE_FACTOR` times the first step's.
    ``protocol`` (gray models only) names the evaluation protocol whose gray channel and LR
    recipe the training data follows; default: the family's ``default_protocol``.
    """
    from tqdm import tqdm

    name = _model_name(model)
    settings = resolve_budget(budget, getattr(model, "family", None) or None)
    steps = settings["steps"]
    scale = int(getattr(model, "scale", 0) or 0)
    if scale < 1:
        raise UserError(f"{name}: model has no integer .scale; cannot make LR patches")
    color = "gray" if getattr(model, "color", "rgb") == "gray" else "rgb"
    recipe = protocol_for(model, protocol) if color == "gray" else None
    data_recipe = f"gray:{recipe.name}" if recipe is not None else "rgb"

    seed_everything(seed)
    reinitialised = reinit and reinitialise_from_id(model, seed)
    seed_everything(seed)  # the same RNG state for the steps whether or not we rebuilt

    model.to(device)
    model.train()
    if settings["sampling"] == "pixels":
        if not supports_pixelwise(model):
            raise UserError(f"budget {settings['name']!r}: sampling 'pixels' trains one-layer models "
                            f"(a per-pixel head: eSR-MAX, eSR-TM, eSR-TR), not {name}")
        bank = NeighbourhoodBank(train_sets, scale=scale, kernel=model.kernel, color=color,
                                 gray_recipe=recipe, seed=seed, data_root=data_root,
                                 augment=settings["augment"], progress=progress)
        objective = PixelwiseObjective(model, bank, settings["pixels_per_step"], device)
        train_images = bank.image_count
    else:
        if 2 * settings["loss_border"] >= settings["patch_size"] // scale:
            raise UserError(f"budget {settings['name']!r}: loss_border {settings['loss_border']} leaves "
                            f"nothing of a {settings['patch_size'] // scale}-pixel LR patch at x{scale}")
        sampler = PatchSampler(train_sets, scale=scale, patch_size=settings["patch_size"], color=color,
                               gray_recipe=recipe, seed=seed, data_root=data_root, augment=settings["augment"],
                               progress=progress)
        if not any(p.requires_grad for p in model.parameters()):
            # Fixed models (the Bicubic baseline): nothing to train; report their loss on one batch.
            return _untrainable_result(model, sampler, settings, device, out_dir, data_recipe,
                                       seed, train_sets)
        objective = PatchObjective(model, sampler, settings, device)
        train_images = len(sampler)
    parameters = objective.parameters
    optimizer = torch.optim.Adam(parameters, lr=settings["lr"], betas=tuple(settings["betas"]),
                                 weight_decay=settings["weight_decay"])

    window = max(1, int(math.ceil(settings["final_loss_window"] * steps)))
    losses = np.zeros(steps, dtype=np.float64)
    term_sums: dict[str, float] = {}
    log_every = max(1, steps // 100)
    history = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=f"train {name}", unit="step", disable=not progress,
               leave=False, dynamic_ncols=True)
    for step in bar:
        lr_now = learning_rate_at(step, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        optimizer.zero_grad(set_to_none=True)
        total, terms = objective.loss(step / steps)
        value = float(total.detach())
        if not math.isfinite(value):
            bar.close()
            raise TrainingDiverged(f"{name}: training loss became {value} at step {step + 1}/{steps} "
                                   f"(budget {settings['name']}, lr {lr_now:g}, seed {seed})")
        total.backward()
        if settings["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(parameters, settings["grad_clip"])
        optimizer.step()
        losses[step] = value
        if step >= steps - window:
            for key, term in terms.items():
                term_sums[key] = term_sums.get(key, 0.0) + float(term.detach().mean())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            recent = losses[max(0, step + 1 - log_every):step + 1].mean()
            history.append({"step": step + 1, "loss": float(recent), "lr": lr_now})
            bar.set_postfix(loss=f"{recent:.4g}", refresh=False)
    bar.close()
    objective.finish()
    train_time = time.perf_counter() - start
    model.eval()
    final_loss = float(losses[-window:].mean())
    if final_loss > DIVERGENCE_FACTOR * losses[0]:
        raise TrainingDiverged(f"{name}: training loss rose from {losses[0]:.4g} to {final_loss:.4g} "
                               f"(budget {settings['name']}, lr {settings['lr']:g}, seed {seed})")

    result = {
        "train_time_s": train_time,
        "steps": steps,
        "final_loss": final_loss,
        "weights_path": None,
        "loss_terms": {k: v / window for k, v in term_sums.items()},
        "first_loss": float(losses[:window].mean()),
        "budget": settings["name"],
        "data_recipe": data_recipe,
        "train_images": train_images,
        "sampling": settings["sampling"],
        "reinitialised": bool(reinitialised),
        "trainable": True,
    }
    _save(model, result, out_dir, seed, train_sets, settings, history)
    return result


class PatchObjective:
    """The training loss (L1 + the family's terms) on batches of aligned HR/LR patches."""

    def __init__(self, model: nn.Module, sampler: PatchSampler, settings: dict, device):
        self.model, self.sampler, self.device = model, sampler, device
        self.batch_size, self.border = settings["batch_size"], settings["loss_border"]
        self.parameters = [p for p in model.parameters() if p.requires_grad]

    def loss(self, progress: float) -> tuple[torch.Tensor, dict]:
        lr_np, hr_np = self.sampler.sample(self.batch_size)
        batch = {"lr": torch.from_numpy(lr_np).to(self.device), "hr": torch.from_numpy(hr_np).to(self.device)}
        return training_loss(self.model, batch, progress, border=self.border)

    def finish(self) -> None:
        pass  # the model's own parameters were trained


def _save(model, result, out_dir, seed, train_sets, settings, history) -> None:
    if out_dir is None:
        return
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # with the model's id, family and scale, which loading checks against the model
    weights_path = save_weights(model, out / "weights.pt")
    result["weights_path"] = str(weights_path)
    log = {"model_id": _model_name(model), "seed": seed,
           "train_sets": [str(s) for s in _as_tuple(train_sets)], "settings": settings,
           "result": dict(result), "history": history}
    (out / "train_log.json").write_text(json.dumps(log, indent=1, default=str))


def _untrainable_result(model, sampler, settings, device, out_dir, data_recipe, seed, train_sets):
    model.eval()
    lr_np, hr_np = sampler.sample(settings["batch_size"])
    batch = {"lr": torch.from_numpy(lr_np).to(device), "hr": torch.from_numpy(hr_np).to(device)}
    with torch.no_grad():
        total, terms = training_loss(model, batch, 1.0, border=settings["loss_border"])
    value = float(total)
    result = {
        "train_time_s": 0.0, "steps": 0, "final_loss": value, "weights_path": None,
        "loss_terms": {k: float(v.mean()) for k, v in terms.items()}, "first_loss": value,
        "budget": settings["name"], "data_recipe": data_recipe, "train_images": len(sampler),
        "reinitialised": False, "trainable": False,
    }
    _save(model, result, out_dir, seed, train_sets, settings, [])
    return result


def _as_tuple(train_sets) -> tuple:
    if isinstance(train_sets, (str, os.PathLike)):
        return (train_sets,)
    return tuple(train_sets)
