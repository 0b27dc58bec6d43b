"""Few-shot transfer of latency prediction to a new device (issue 20, item 2).

A *device table* is the latency of every released eSR model on one device: the eSR
authors' published speeds on the Jetson AGX, the GTX 1080 Max-Q and the Raspberry Pi 400
(``published/esr_tests.csv``, ``latency_ms = 1000 / speed`` at Full-HD output) and the
suite's own measurement of this machine's CPU (``studies/measured/esr_cpu/latency.csv``,
540x960 output, described by ``machine.json`` beside it).

``transfer``: for a target device, K models are chosen by :func:`design_shots` (spread over
families, scales and cost; seeded) and "measured" (their latency is read from the target's
table). A predictor is fitted on those K shots only, using as inputs the *other* devices'
latencies of the same models (leave-one-device-out: the target's own column is never an
input) plus the model's MACs, all in log space:

    log t_target ~ a + sum_j b_j log t_source_j + c log MACs [+ graph features]

(ridge; alpha, and which input set, chosen by closed-form leave-one-out on the K shots alone;
see :func:`transfer_inputs`). It is scored on every model that is not a shot. Two baselines on the same shots:
``macs``: ``log t = a + b log MACs`` (MACs alone); ``shots_only``: the pooled predictor of
:mod:`search.profile.predictor` (roofline prior + boosted trees on graph features) fitted on
the K shots alone. The output size differs between tables (Full HD vs 540x960); every model
here is log-linear with an intercept, so a common factor in the inputs or the target is
absorbed by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.errors import UserError
from search.paths import PUBLISHED_DIR, REPO_ROOT
from search.profile import predictor as P
from search.profile.devices import get_device

MEASURED_CPU_CSV = REPO_ROOT / "studies" / "measured" / "esr_cpu" / "latency.csv"
PUBLISHED_COLUMNS = {"jetson": "speed_AGX", "maxq": "speed_MaxQ", "rpi": "speed_RPI"}
TARGET_ALIASES = {"jetson": "jetson", "agx": "jetson", "xavier": "jetson", "maxq": "maxq",
                  "max-q": "maxq", "gtx1080": "maxq", "rpi": "rpi", "pi": "rpi",
                  "cpu": "cpu", "host": "cpu", "local": "cpu"}
DEVICES = ("jetson", "maxq", "rpi", "cpu")
DEFAULT_SHOTS = (5, 10, 20, 50)
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class DeviceTables:
    """Latency (ms) of the same models on several devices, with their family, scale and MACs."""

    model_ids: list[str]
    families: np.ndarray
    scales: np.ndarray
    macs: np.ndarray                 # MACs of one forward pass (any fixed output size)
    latency_ms: dict[str, np.ndarray]
    sources: dict[str, str]          # device -> where its numbers come from

    def __len__(self) -> int:
        return len(self.model_ids)


def resolve_target(name: str, tables: DeviceTables | None = None) -> str:
    key = TARGET_ALIASES.get(name.lower(), name.lower())
    known = tuple(tables.latency_ms) if tables is not None else DEVICES
    if key not in known:
        raise UserError(f"unknown transfer target {name!r} (choose from {', '.join(known)})")
    return key


def load_tables(published_csv: Path | None = None, cpu_csv: Path | None = None) -> DeviceTables:
    """The four device tables on the models present (and positive) in all of them."""
    import pandas as pd

    pub_path = Path(published_csv or PUBLISHED_DIR / "esr_tests.csv")
    cpu_path = Path(cpu_csv or MEASURED_CPU_CSV)
    for path in (pub_path, cpu_path):
        if not path.is_file():
            raise UserError("device table not found", path=path)
    pub = pd.read_csv(pub_path).set_index("model")
    cpu = pd.read_csv(cpu_path).set_index("model")
    ids = [m for m in pub.index if m in cpu.index]
    keep = np.ones(len(ids), dtype=bool)
    latency = {}
    for device, column in PUBLISHED_COLUMNS.items():
        values = pub.loc[ids, column].to_numpy(dtype=np.float64)
        keep &= np.isfinite(values) & (values > 0)
        latency[device] = 1000.0 / np.where(values > 0, values, np.nan)
    latency["cpu"] = cpu.loc[ids, "latency_ms"].to_numpy(dtype=np.float64)
    keep &= np.isfinite(latency["cpu"]) & (latency["cpu"] > 0)
    macs = cpu.loc[ids, "macs"].to_numpy(dtype=np.float64)
    keep &= macs > 0
    ids = [m for m, k in zip(ids, keep) if k]
    return DeviceTables(
        model_ids=ids,
        families=pub.loc[ids, "family"].astype(str).to_numpy(),
        scales=pub.loc[ids, "s"].to_numpy(dtype=np.int64),
        macs=macs[keep],
        latency_ms={d: v[keep] for d, v in latency.items()},
        sources={**{d: f"{pub_path.name}:{c} (1000/fps, 1080x1920 output)"
                    for d, c in PUBLISHED_COLUMNS.items()},
                 "cpu": f"{cpu_path} (measured, 540x960 output)"},
    )


# --------------------------------------------------------------------------- shot design
def design_shots(families: np.ndarray, scales: np.ndarray, macs: np.ndarray, k: int,
                 seed: int = 0) -> np.ndarray:
    """K distinct model indices spread over families, scales and cost (seeded).

    Families are visited in a seeded random order, cyclically, so the first
    ``n_families`` shots hold one model of each family; within a family the scale used least
    so far is taken (ties at random), so K >= families x scales covers every (family, scale)
    pair that exists. Within the (family, scale) stratum the model whose cost rank (MACs)
    is nearest to a Latin-hypercube quantile is taken, so the shots also spread over cost.
    """
    n = len(families)
    if not 1 <= k <= n:
        raise UserError(f"--shots must be between 1 and {n}, got {k}")
    rng = np.random.default_rng(seed)
    fams = sorted(set(families.tolist()))
    fam_order = [fams[i] for i in rng.permutation(len(fams))]
    quantiles = (rng.permutation(k) + rng.random(k)) / k   # one per shot, Latin hypercube
    # within-stratum cost quantile of every model
    strata: dict[tuple[str, int], np.ndarray] = {}
    for f in fams:
        for s in sorted(set(scales[families == f].tolist())):
            idx = np.flatnonzero((families == f) & (scales == s))
            strata[(f, s)] = idx[np.argsort(macs[idx], kind="stable")]
    used_scale: dict[tuple[str, int], int] = {key: 0 for key in strata}
    taken = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    cursor = 0
    while len(chosen) < k:
        family = fam_order[cursor % len(fam_order)]
        cursor += 1
        open_strata = [key for key in strata if key[0] == family and not taken[strata[key]].all()]
        if not open_strata:
            continue
        fewest = min(used_scale[key] for key in open_strata)
        candidates = [key for key in open_strata if used_scale[key] == fewest]
        key = candidates[rng.integers(len(candidates))]
        members = strata[key]
        free_rank = np.flatnonzero(~taken[members])      # cost ranks still free in the stratum
        rank_q = (free_rank + 0.5) / len(members)
        pick = int(members[free_rank[np.argmin(np.abs(rank_q - quantiles[len(chosen)]))]])
        taken[pick] = True
        used_scale[key] += 1
        chosen.append(pick)
    return np.array(chosen, dtype=np.int64)


# --------------------------------------------------------------------------- models
def _ridge_loo(X: np.ndarray, y: np.ndarray, alphas=RIDGE_ALPHAS):
    """Ridge on standardised X with an unpenalised intercept; alpha by closed-form leave-one-out.

    Returns a function mapping a new X to predictions.
    """
    mean_x = X.mean(axis=0)
    std_x = X.std(axis=0)
    std_x[std_x == 0] = 1.0
    Z = (X - mean_x) / std_x
    mean_y = y.mean()
    yc = y - mean_y
    n = len(y)
    best = None
    for alpha in alphas:
        A = Z.T @ Z + alpha * np.eye(Z.shape[1])
        coef = np.linalg.solve(A, Z.T @ yc)
        # hat matrix of the centred problem plus the intercept's 1/n
        H = Z @ np.linalg.solve(A, Z.T) + 1.0 / n
        resid = yc - Z @ coef
        denom = np.clip(1.0 - np.diag(H), 1e-6, None)
        loo = float(np.mean((resid / denom) ** 2))
        if best is None or loo < best[0]:
            best = (loo, alpha, coef)
    loo_best, alpha, coef = best

    def predict(Xnew: np.ndarray) -> np.ndarray:
        return mean_y + ((Xnew - mean_x) / std_x) @ coef

    predict.alpha = alpha  # type: ignore[attr-defined]
    predict.loo = loo_best  # type: ignore[attr-defined]
    return predict


def transfer_inputs(tables: DeviceTables, target: str,
                    features: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Candidate input matrices (one row per model); the target's own column is never used.

    ``sources``: log latency on every other device and log MACs; ``sources+graph``: plus
    log bytes moved, log operator count, log LR megapixels and log channels carried at HR
    resolution; ``sources+graph+family``: plus family and scale indicators; ``sources+all``:
    plus every graph feature (``log1p``). Graph-feature candidates need ``features`` (rows of
    :data:`search.profile.predictor.FEATURE_NAMES`).
    """
    others = [d for d in tables.latency_ms if d != target]
    base = np.column_stack([np.log(tables.latency_ms[d]) for d in others] + [np.log(tables.macs)])
    out = {"sources": base}
    if features is not None:
        names = list(P.FEATURE_NAMES)
        graph = np.column_stack([np.log1p(features[:, names.index(n)])
                                 for n in ("bytes", "n_ops", "lr_mpx", "max_channels_hr")])
        fams = sorted(set(tables.families.tolist()))
        scales = sorted(set(tables.scales.tolist()))
        onehot = np.column_stack([(tables.families == f).astype(float) for f in fams]
                                 + [(tables.scales == s).astype(float) for s in scales])
        out["sources+graph"] = np.column_stack([base, graph])
        out["sources+graph+family"] = np.column_stack([base, graph, onehot])
        out["sources+all"] = np.column_stack([base, np.log1p(np.maximum(features, 0.0))])
    return out


def predict_transfer(candidates: dict[str, np.ndarray], target_ms: np.ndarray,
                     shots: np.ndarray) -> tuple[np.ndarray, str]:
    """Latency (ms) of every model from the shots' target latencies, and the inputs chosen.

    Each candidate input set gets a log-space ridge (alpha by closed-form leave-one-out on the
    shots); the candidate with the lowest leave-one-out error on the shots is used. Only
    the shots' target latencies are read.
    """
    y = np.log(target_ms[shots])
    best = None
    for name, X in candidates.items():
        fit = _ridge_loo(X[shots], y)
        if best is None or fit.loo < best[0]:
            best = (fit.loo, name, fit)
    _, name, fit = best
    return np.exp(fit(candidates[name])), name


def predict_macs_only(macs: np.ndarray, target_ms: np.ndarray, shots: np.ndarray) -> np.ndarray:
    """Baseline: ``log t = a + b log MACs`` by least squares on the shots."""
    x = np.log(macs[shots])
    y = np.log(target_ms[shots])
    if len(shots) < 2 or np.ptp(x) == 0:
        return np.full(len(macs), float(np.exp(y.mean())))
    b, a = np.polyfit(x, y, 1)
    return np.exp(a + b * np.log(macs))


def predict_shots_only(features: np.ndarray, target_ms: np.ndarray, shots: np.ndarray,
                       gbm_settings: dict | None = None) -> np.ndarray:
    """Baseline: the pooled predictor (roofline prior + trees) fitted on the K shots alone."""
    coef, init, lr, trees = P._fit_arrays(features[shots], target_ms[shots], gbm_settings)
    model = P.LatencyPredictor(device="shots", prior_coef=list(coef), residual_init=init,
                               learning_rate=lr, trees=trees)
    return model.predict_ms(features)


# --------------------------------------------------------------------------- evaluation
METHODS = ("transfer", "macs", "shots_only")


def evaluate_transfer(tables: DeviceTables, target: str, shots_list=DEFAULT_SHOTS, *,
                      repeats: int = 5, seed: int = 0, features: np.ndarray | None = None,
                      gbm_settings: dict | None = None) -> dict:
    """Metrics on the non-shot models, averaged over ``repeats`` seeded designs, per K and method.

    ``features``: graph features (rows aligned with ``tables.model_ids``) for the
    ``shots_only`` baseline; without them that baseline is skipped.
    """
    target = resolve_target(target, tables)
    y = tables.latency_ms[target]
    candidates = transfer_inputs(tables, target, features)
    methods = [m for m in METHODS if m != "shots_only" or features is not None]
    result: dict = {"target": target, "source_of_target": tables.sources[target],
                    "inputs": [d for d in tables.latency_ms if d != target] + ["macs"]
                    + (["graph features"] if features is not None else []),
                    "n_models": len(tables), "repeats": repeats, "seed": seed, "shots": {}}
    for k in shots_list:
        per_method: dict[str, list[dict]] = {m: [] for m in methods}
        chosen: list[str] = []
        for r in range(repeats):
            shots = design_shots(tables.families, tables.scales, tables.macs, k, seed=seed + r)
            rest = np.setdiff1d(np.arange(len(tables)), shots)
            transfer_ms, name = predict_transfer(candidates, y, shots)
            chosen.append(name)
            preds = {"transfer": transfer_ms, "macs": predict_macs_only(tables.macs, y, shots)}
            if "shots_only" in methods:
                preds["shots_only"] = predict_shots_only(features, y, shots, gbm_settings)
            for m in methods:
                per_method[m].append(P.error_metrics(y[rest], preds[m][rest]))
        result["shots"][str(k)] = {m: _mean_metrics(v) for m, v in per_method.items()}
        result["shots"][str(k)]["transfer"]["inputs_chosen"] = chosen
    return result


def _mean_metrics(runs: list[dict]) -> dict:
    out = {}
    for key in ("within_10pct", "within_20pct", "spearman", "median_abs_rel_error"):
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    out["n_test"] = int(runs[0]["n"])
    return out


def graph_feature_matrix(tables: DeviceTables, progress: bool = False) -> np.ndarray:
    """Graph features (Full HD, fp16 bytes, as the jetson predictor) of every model in the tables."""
    data = P.load_published(get_device("jetson"), progress=progress)
    index = {m: i for i, m in enumerate(data.model_ids)}
    return data.features[[index[m] for m in tables.model_ids]]
