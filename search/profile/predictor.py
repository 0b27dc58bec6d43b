"""Latency predictors for devices we cannot reach, fitted on the eSR authors' measurements.

``published/esr_tests.csv`` holds, for 1185 models, the speed on a Jetson AGX Xavier
(``speed_AGX``), a GTX 1080 Max-Q (``speed_MaxQ``) and a Raspberry Pi 400 (``speed_RPI``).
The unit is not stated; it is frames per second at Full-HD output (see docs/profiling.md:
speed falls as MACs grow, rises with the scale at a fixed output size, and the heaviest
models imply a plausible MAC rate for each device), so ``latency_ms = 1000 / speed``.

Features come from the model graph traced at the device's output size (see
:mod:`search.profile.trace`): per operator kind the number of operators, MACs and bytes
moved, plus channel and kernel statistics. The predictor has two stages:

1. a *roofline-style prior*: a non-negative linear model of latency in operator launches,
   MACs and bytes moved per operator kind (fitted by NNLS on relative error), which
   stays physically meaningful for models outside the fitted families;
2. a *residual*: gradient-boosted trees (scikit-learn, at fit time only) on
   ``log(latency / prior)`` from the log features.

Fitted predictors are stored as JSON (coefficients and tree arrays, no pickle) in
``search/profile/predictors/<device>.json`` together with their cross-validated error.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from torch import nn

from search.errors import UserError
from search.models import create_model
from search.paths import PUBLISHED_DIR
from search.profile.devices import DeviceProfile, get_device
from search.profile.flops import lr_shape_for
from search.profile.trace import trace_ops

PREDICTOR_DIR = Path(__file__).resolve().parent / "predictors"
PUBLISHED_CSV = PUBLISHED_DIR / "esr_tests.csv"
FORMAT_VERSION = 1

OP_KINDS = ("conv", "conv_transpose", "matmul", "shuffle", "softmax", "multiply", "add",
            "compare", "transcendental", "reduction", "resize", "other")
ELEMENTWISE_KINDS = tuple(k for k in OP_KINDS if k not in ("conv", "conv_transpose", "matmul"))
FEATURE_NAMES: tuple[str, ...] = (
    ("lr_mpx", "hr_mpx", "n_ops", "macs", "bytes")
    + tuple(f"{stat}_{kind}" for kind in OP_KINDS for stat in ("n", "macs", "bytes"))
    + ("max_cout", "sum_cout", "last_cout", "max_kernel", "max_channels_hr")
    # fp16 kernels (tensor cores) want even channel counts; odd ones take slower paths
    + ("n_conv_odd", "macs_conv_odd", "bytes_odd_channels")
)
# Prior: latency ~ c0 + per-launch costs + per-MAC and per-byte costs (non-negative).
PRIOR_FEATURES: tuple[str, ...] = (
    "const", "lr_mpx", "n_dense", "n_elementwise", "macs_conv", "bytes_conv",
    "macs_conv_transpose", "bytes_conv_transpose", "macs_matmul", "bytes_matmul",
    "macs_elementwise", "bytes_shuffle", "bytes_softmax", "bytes_elementwise_other",
)

# Residual model settings (chosen by 5-fold CV on the AGX column; see docs/profiling.md).
GBM_SETTINGS = dict(n_estimators=800, max_depth=4, learning_rate=0.025, subsample=0.8,
                    loss="huber", random_state=0)


# --------------------------------------------------------------------------- features
def graph_features(model: nn.Module, output_size: tuple[int, int] = (1080, 1920), *,
                   bytes_per_element: int = 4) -> dict[str, float]:
    """Graph features of one forward pass producing ``output_size`` (MACs in G, bytes in GB)."""
    lr_shape = lr_shape_for(model, output_size)
    records = trace_ops(model, lr_shape, bytes_per_element=bytes_per_element)
    feats = {name: 0.0 for name in FEATURE_NAMES}
    feats["lr_mpx"] = lr_shape[0] * lr_shape[1] / 1e6
    scale = int(getattr(model, "scale", 1) or 1)
    hr_pixels = lr_shape[0] * lr_shape[1] * scale * scale
    feats["hr_mpx"] = hr_pixels / 1e6
    for rec in records:
        kind = rec.kind if rec.kind in OP_KINDS else "other"
        moved = (rec.bytes_read + rec.bytes_written) / 1e9
        feats["n_ops"] += 1
        feats["macs"] += rec.macs / 1e9
        feats["bytes"] += moved
        feats[f"n_{kind}"] += 1
        feats[f"macs_{kind}"] += rec.macs / 1e9
        feats[f"bytes_{kind}"] += moved
        odd_in = rec.in_channels > 1 and rec.in_channels % 2 == 1
        odd_out = rec.out_channels > 1 and rec.out_channels % 2 == 1
        if odd_in or odd_out:
            feats["bytes_odd_channels"] += moved
        if kind in ("conv", "conv_transpose"):
            if odd_in or odd_out:
                feats["n_conv_odd"] += 1
                feats["macs_conv_odd"] += rec.macs / 1e9
            feats["max_cout"] = max(feats["max_cout"], rec.out_channels)
            feats["sum_cout"] += rec.out_channels
            feats["last_cout"] = rec.out_channels
            feats["max_kernel"] = max(feats["max_kernel"], rec.kernel)
        if rec.out_elements >= hr_pixels and rec.out_channels:
            # channels carried at HR resolution (e.g. eSR's C after the pixel shuffle)
            feats["max_channels_hr"] = max(feats["max_channels_hr"], rec.out_elements / hr_pixels)
    return feats


def prior_design(features: np.ndarray) -> np.ndarray:
    """Columns of :data:`PRIOR_FEATURES` from a matrix of :data:`FEATURE_NAMES` rows."""
    col = {name: features[:, i] for i, name in enumerate(FEATURE_NAMES)}
    n_dense = col["n_conv"] + col["n_conv_transpose"] + col["n_matmul"]
    n_elementwise = col["n_ops"] - n_dense
    macs_elementwise = sum(col[f"macs_{k}"] for k in ELEMENTWISE_KINDS)
    bytes_other = sum(col[f"bytes_{k}"] for k in ELEMENTWISE_KINDS if k not in ("shuffle", "softmax"))
    columns = [np.ones(len(features)), col["lr_mpx"], n_dense, n_elementwise,
               col["macs_conv"], col["bytes_conv"], col["macs_conv_transpose"],
               col["bytes_conv_transpose"], col["macs_matmul"], col["bytes_matmul"],
               macs_elementwise, col["bytes_shuffle"], col["bytes_softmax"], bytes_other]
    return np.stack(columns, axis=1)


def residual_design(features: np.ndarray, prior: np.ndarray) -> np.ndarray:
    return np.column_stack([np.log1p(np.maximum(features, 0.0)), np.log(prior)])


# --------------------------------------------------------------------------- trees
def _tree_predict(tree: dict, X: np.ndarray) -> np.ndarray:
    """Evaluate one exported regression tree (scikit-learn's ``x <= threshold`` -> left)."""
    left = np.asarray(tree["left"])
    right = np.asarray(tree["right"])
    feature = np.asarray(tree["feature"])
    threshold = np.asarray(tree["threshold"], dtype=np.float32)
    value = np.asarray(tree["value"], dtype=np.float64)
    X32 = X.astype(np.float32)
    node = np.zeros(len(X), dtype=np.int64)
    for _ in range(64):
        leaf = left[node] < 0
        if leaf.all():
            break
        go_left = X32[np.arange(len(X)), np.maximum(feature[node], 0)] <= threshold[node]
        nxt = np.where(go_left, left[node], right[node])
        node = np.where(leaf, node, nxt)
    return value[node]


def _export_tree(tree) -> dict:
    t = tree.tree_
    return {
        "left": t.children_left.tolist(),
        "right": t.children_right.tolist(),
        "feature": t.feature.tolist(),
        # shortest decimal that round-trips to the float32 scikit-learn compares against
        "threshold": [float(str(np.float32(v))) for v in t.threshold],
        "value": [float(f"{v:.7g}") for v in t.value[:, 0, 0]],  # 1e-7: far below any error
    }


# --------------------------------------------------------------------------- predictor
@dataclass
class LatencyPredictor:
    """A fitted two-stage predictor (prior coefficients + residual trees), JSON-serialisable."""

    device: str
    prior_coef: list[float]
    residual_init: float
    learning_rate: float
    trees: list[dict]
    output_size: tuple[int, int] = (1080, 1920)
    bytes_per_element: int = 2
    published_column: str | None = None
    training_families: list[str] = field(default_factory=list)
    feature_ranges: dict[str, list[float]] = field(default_factory=dict)
    cv: dict[str, Any] = field(default_factory=dict)
    leave_one_family_out: dict[str, Any] = field(default_factory=dict)
    n_models: int = 0
    settings: dict[str, Any] = field(default_factory=lambda: dict(GBM_SETTINGS))

    # prediction ---------------------------------------------------------------
    def prior_ms(self, features: np.ndarray) -> np.ndarray:
        prior = prior_design(np.atleast_2d(features)) @ np.asarray(self.prior_coef)
        return np.maximum(prior, 1e-3)

    def predict_ms(self, features: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(features, dtype=np.float64))
        prior = self.prior_ms(X)
        design = residual_design(X, prior)
        log_ratio = np.full(len(X), self.residual_init)
        for tree in self.trees:
            log_ratio += self.learning_rate * _tree_predict(tree, design)
        return prior * np.exp(log_ratio)

    def extrapolation_reasons(self, features: dict[str, float], family: str | None) -> list[str]:
        reasons = []
        if family is not None and self.training_families and family not in self.training_families:
            reasons.append(f"family {family} not among the fitted families "
                           f"({', '.join(self.training_families)})")
        outside = [name for name, (low, high) in self.feature_ranges.items()
                   if not (low * 0.999 - 1e-12 <= features.get(name, 0.0) <= high * 1.001 + 1e-12)]
        if outside:
            reasons.append("features outside the fitted range: " + ", ".join(outside[:6])
                           + (" ..." if len(outside) > 6 else ""))
        return reasons

    # persistence ----------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "device": self.device,
            "published_column": self.published_column,
            "target": "latency_ms = 1000 / published speed (frames per second)",
            "output_size": list(self.output_size),
            "bytes_per_element": self.bytes_per_element,
            "feature_names": list(FEATURE_NAMES),
            "prior": {"features": list(PRIOR_FEATURES), "coef": list(self.prior_coef)},
            "residual": {"init": self.residual_init, "learning_rate": self.learning_rate,
                         "settings": self.settings,
                         "trees": self.trees},
            "training_families": self.training_families,
            "feature_ranges": self.feature_ranges,
            "n_models": self.n_models,
            "cv": self.cv,
            "leave_one_family_out": self.leave_one_family_out,
        }

    def save(self, path: Path | None = None) -> Path:
        path = Path(path or PREDICTOR_DIR / f"{self.device}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")
        return path

    @classmethod
    def from_json(cls, data: dict, *, source: object = None) -> "LatencyPredictor":
        try:
            if data.get("format_version") != FORMAT_VERSION:
                raise KeyError(f"format_version {data.get('format_version')!r} != {FORMAT_VERSION}")
            if list(data["feature_names"]) != list(FEATURE_NAMES):
                raise KeyError("feature names differ from this version of the code (refit it)")
            return cls(
                device=data["device"],
                prior_coef=[float(v) for v in data["prior"]["coef"]],
                residual_init=float(data["residual"]["init"]),
                learning_rate=float(data["residual"]["learning_rate"]),
                trees=data["residual"]["trees"],
                output_size=tuple(data["output_size"]),
                bytes_per_element=int(data["bytes_per_element"]),
                published_column=data.get("published_column"),
                training_families=list(data.get("training_families", [])),
                feature_ranges=dict(data.get("feature_ranges", {})),
                cv=dict(data.get("cv", {})),
                leave_one_family_out=dict(data.get("leave_one_family_out", {})),
                n_models=int(data.get("n_models", 0)),
                settings=dict(data["residual"].get("settings", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"not a latency predictor file of this version: {exc}", path=source) from None

    @classmethod
    def load(cls, path: Path) -> "LatencyPredictor":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read latency predictor ({type(exc).__name__}: {exc})", path=path) from None
        return cls.from_json(data, source=path)


_LOADED: dict[str, LatencyPredictor] = {}


def load_predictor(device: str | DeviceProfile) -> LatencyPredictor:
    """The persisted predictor of ``device`` (cached per process)."""
    profile = get_device(device)
    if profile.name in _LOADED:
        return _LOADED[profile.name]
    path = PREDICTOR_DIR / f"{profile.name}.json"
    if not profile.has_predictor_data:
        raise UserError(f"device {profile.name!r} has no published measurements to predict "
                        f"from; measure it instead (profile {profile.path})")
    if not path.is_file():
        raise UserError(f"no fitted latency predictor for {profile.name!r} at {path}; fit it with "
                        f"`python -m search.profile predictor --device {profile.name} --save`")
    predictor = LatencyPredictor.load(path)
    _LOADED[profile.name] = predictor
    return predictor


def predict_latency(model: nn.Module, device: str | DeviceProfile,
                    output_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Predicted latency of ``model`` on ``device``, labelled with the predictor's CV error."""
    profile = get_device(device)
    predictor = load_predictor(profile)
    size = tuple(output_size or profile.output_size)
    features = graph_features(model, size, bytes_per_element=predictor.bytes_per_element)
    vector = np.array([[features[name] for name in FEATURE_NAMES]])
    latency = float(predictor.predict_ms(vector)[0])
    reasons = predictor.extrapolation_reasons(features, getattr(model, "family", None))
    if size != tuple(predictor.output_size):
        reasons.append(f"output size {size} differs from the fitted {tuple(predictor.output_size)}")
    cv = predictor.cv
    return {
        "latency_ms": latency,
        "latency_source": f"predicted:{profile.name}",
        "latency_cv_within_10pct": cv.get("within_10pct"),
        "latency_cv_within_20pct": cv.get("within_20pct"),
        "latency_cv_spearman": cv.get("spearman"),
        "latency_predictor": f"roofline-prior+gbm on {predictor.published_column} "
                             f"({predictor.n_models} models, {cv.get('folds')}-fold CV)",
        "latency_extrapolation": bool(reasons),
        "latency_extrapolation_reason": "; ".join(reasons) or None,
    }


# --------------------------------------------------------------------------- fitting
@dataclass
class PublishedData:
    model_ids: list[str]
    families: np.ndarray
    latency_ms: np.ndarray
    features: np.ndarray


_FEATURE_CACHE: dict[tuple, np.ndarray] = {}


def load_published(profile: DeviceProfile, csv_path: Path | None = None, *,
                   limit: int | None = None, progress: bool = True) -> PublishedData:
    """Published speeds of ``profile``'s column, as latency_ms, with traced graph features."""
    import pandas as pd

    path = Path(csv_path or PUBLISHED_CSV)
    if not path.is_file():
        raise UserError("published measurements not found", path=path)
    if not profile.published_column:
        raise UserError(f"device {profile.name!r} has no published_column to fit on", path=profile.path)
    table = pd.read_csv(path)
    if profile.published_column not in table.columns:
        raise UserError(f"column {profile.published_column!r} not in the file", path=path)
    table = table[table[profile.published_column] > 0].reset_index(drop=True)
    if limit:
        table = table.iloc[np.linspace(0, len(table) - 1, limit).astype(int)].reset_index(drop=True)
    ids = table["model"].astype(str).tolist()
    key = (str(path), tuple(ids), tuple(profile.output_size), profile.bytes_per_element)
    if key not in _FEATURE_CACHE:
        rows = []
        iterator: Iterable[str] = ids
        if progress:
            from tqdm import tqdm

            iterator = tqdm(ids, desc=f"tracing {len(ids)} models", unit="model", leave=False)
        for model_id in iterator:
            model = create_model(model_id)
            feats = graph_features(model, profile.output_size,
                                   bytes_per_element=profile.bytes_per_element)
            rows.append([feats[name] for name in FEATURE_NAMES])
        _FEATURE_CACHE[key] = np.array(rows, dtype=np.float64)
    speed = table[profile.published_column].to_numpy(dtype=np.float64)
    return PublishedData(ids, table["family"].astype(str).to_numpy(), 1000.0 / speed,
                         _FEATURE_CACHE[key])


def _fit_arrays(features: np.ndarray, latency_ms: np.ndarray, gbm_settings: dict | None = None,
                bar=None):
    """Prior coefficients, residual init, learning rate and exported trees.

    ``bar``: a progress bar advanced by one per boosted tree (observes only; the fit is the same).
    """
    from scipy.optimize import nnls
    from sklearn.ensemble import GradientBoostingRegressor

    design = prior_design(features)
    # relative error: divide each row by its target, so every model weighs the same
    coef, _ = nnls(design / latency_ms[:, None], np.ones(len(latency_ms)))
    prior = np.maximum(design @ coef, 1e-3)
    X = residual_design(features, prior)
    target = np.log(latency_ms / prior)
    settings = {**GBM_SETTINGS, **(gbm_settings or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gbm = GradientBoostingRegressor(**settings).fit(X, target, monitor=_tree_monitor(bar))
    trees = [_export_tree(est[0]) for est in gbm.estimators_]
    lr = float(settings["learning_rate"])
    # the constant initial prediction, recovered without private attributes
    tree_sum = sum(lr * _tree_predict(t, X[:1]) for t in trees)
    init = float(gbm.predict(X[:1])[0] - tree_sum[0])
    return coef, init, lr, trees


def fit_predictor(profile: DeviceProfile, data: PublishedData, *,
                  gbm_settings: dict | None = None, progress: bool = False) -> LatencyPredictor:
    bar = _progress_bar(progress, _n_trees(gbm_settings), f"fitting {profile.name} predictor")
    try:
        coef, init, lr, trees = _fit_arrays(data.features, data.latency_ms, gbm_settings, bar)
    finally:
        if bar is not None:
            bar.close()
    ranges = {name: [float(data.features[:, i].min()), float(data.features[:, i].max())]
              for i, name in enumerate(FEATURE_NAMES)}
    return LatencyPredictor(
        device=profile.name, prior_coef=[float(c) for c in coef], residual_init=init,
        learning_rate=lr, trees=trees, output_size=tuple(profile.output_size),
        bytes_per_element=profile.bytes_per_element, published_column=profile.published_column,
        training_families=sorted(set(data.families.tolist())), feature_ranges=ranges,
        n_models=len(data.model_ids), settings={**GBM_SETTINGS, **(gbm_settings or {})},
    )


def error_metrics(true_ms: np.ndarray, predicted_ms: np.ndarray) -> dict[str, float]:
    """Share within +-10% / +-20%, Spearman rank correlation, median |relative error|."""
    from scipy.stats import spearmanr

    rel = predicted_ms / true_ms - 1.0
    rho = spearmanr(true_ms, predicted_ms).statistic if len(true_ms) > 2 else float("nan")
    return {
        "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
        "within_20pct": float(np.mean(np.abs(rel) <= 0.20)),
        "spearman": float(rho) if not math.isnan(rho) else None,
        "median_abs_rel_error": float(np.median(np.abs(rel))),
        "n": int(len(true_ms)),
    }


def cross_validate(profile: DeviceProfile, data: PublishedData, *, folds: int = 5,
                   seed: int = 0, gbm_settings: dict | None = None,
                   progress: bool = False) -> tuple[dict, np.ndarray]:
    """k-fold CV (shuffled, seeded); returns metrics over all held-out models and predictions."""
    if folds < 2 or folds > len(data.latency_ms):
        raise UserError(f"--cv must be between 2 and {len(data.latency_ms)}, got {folds}")
    order = np.random.default_rng(seed).permutation(len(data.latency_ms))
    predictions = np.zeros(len(data.latency_ms))
    splits = np.array_split(order, folds)
    bar = _progress_bar(progress, folds * _n_trees(gbm_settings), f"{folds}-fold CV")
    try:
        for i, held_out in enumerate(splits):
            if bar is not None:
                bar.set_postfix_str(f"fold {i + 1}/{folds}", refresh=False)
            train = np.setdiff1d(order, held_out)
            predictions[held_out] = _fit_predict(data, train, held_out, gbm_settings, bar)
    finally:
        if bar is not None:
            bar.close()
    metrics = error_metrics(data.latency_ms, predictions)
    metrics.update({"folds": folds, "seed": seed})
    return metrics, predictions


def leave_one_family_out(profile: DeviceProfile, data: PublishedData, *,
                         gbm_settings: dict | None = None,
                         progress: bool = False) -> tuple[dict, np.ndarray]:
    """Hold out each family in turn (fit on the others); metrics per family and overall."""
    predictions = np.zeros(len(data.latency_ms))
    per_family = {}
    families = sorted(set(data.families.tolist()))
    bar = _progress_bar(progress, len(families) * _n_trees(gbm_settings), "leave-one-family-out")
    try:
        for family in families:
            if bar is not None:
                bar.set_postfix_str(f"without {family}", refresh=False)
            held_out = np.flatnonzero(data.families == family)
            train = np.flatnonzero(data.families != family)
            predictions[held_out] = _fit_predict(data, train, held_out, gbm_settings, bar)
            per_family[family] = error_metrics(data.latency_ms[held_out], predictions[held_out])
    finally:
        if bar is not None:
            bar.close()
    overall = error_metrics(data.latency_ms, predictions)
    return {"overall": overall, "per_family": per_family}, predictions


def _fit_predict(data: PublishedData, train: np.ndarray, test: np.ndarray,
                 gbm_settings: dict | None, bar=None) -> np.ndarray:
    coef, init, lr, trees = _fit_arrays(data.features[train], data.latency_ms[train], gbm_settings, bar)
    model = LatencyPredictor(device="cv", prior_coef=list(coef), residual_init=init,
                             learning_rate=lr, trees=trees)
    return model.predict_ms(data.features[test])


def _n_trees(gbm_settings: dict | None) -> int:
    return int({**GBM_SETTINGS, **(gbm_settings or {})}["n_estimators"])


def _progress_bar(progress: bool, total: int, desc: str):
    """A tqdm bar over boosted trees on stderr (``total`` = fits x trees), or None."""
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="tree", leave=False, file=sys.stderr, dynamic_ncols=True)


def _tree_monitor(bar):
    """A ``GradientBoostingRegressor.fit`` monitor that advances ``bar`` once per tree.

    It always returns False: a true value would stop the boosting early (``tqdm.update``
    itself returns True whenever it redraws, so its result must not be passed on).
    """
    if bar is None:
        return None

    def monitor(stage, estimator, local_vars) -> bool:
        bar.update(1)
        return False

    return monitor
