"""Overhead of the study runner per trial, against a bare Ray Tune run of the same trivial trial.

Both runs use one Ray instance started once, the same trivial trainable work (a dict of
metrics, no training), the same number of trials, one trial at a time and actor reuse:

* bare: ``tune.Tuner`` over ``tune.grid_search`` of the configuration ids, nothing else;
* for reference, Tune + ``OptunaSearch`` (in memory, no suite code), to separate what the
  mandated Tune/Optuna pairing costs by itself from what the suite adds;
* suite: :func:`search.study.run_study` with ``--sampler grid``, i.e. OptunaSearch with a
  define-by-run space, the SQLite Optuna storage, trials.csv written and fsync'ed per trial,
  the trial wrapper (build -> train -> evaluate -> profile, here all trivial stand-ins).

Runs alternate (bare, suite, bare, suite, ...) so that load changes on a shared machine hit
both; the ratio of the medians of seconds per trial is printed. Goal: ratio <= 1.15.

    python benchmarks/runner_overhead.py [--trials 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.errors import cli_main  # noqa: E402
from search.profile.latency import time_call
from search.study import StudyOptions, TrialPipeline, run_study  # noqa: E402

SPACE = textwrap.dedent("""\
    name: overhead
    scales: [2]
    fixed:
      test_sets: [Set5]
      objectives: [psnr_Set5:max, params:min]
    families:
      eSR-MAX:
        hparams: {K: [3, 5, 7], C: {low: 1, high: 16}}
    """)
METRICS = {"psnr_Set5": 30.0, "ssim_Set5": 0.9, "params": 100, "flops": 1000, "latency_ms": 1.0,
           "latency_source": "trivial", "train_time_s": 0.0}


class TrivialModel:
    model_id = "trivial"

    def parameters(self):
        return iter(())

    def eval(self):
        return self

    def to(self, device):
        return self


def trivial_build(config):
    return TrivialModel()


def trivial_evaluate(model, test_sets, **kwargs):
    return {s: {"psnr": METRICS["psnr_Set5"], "ssim": METRICS["ssim_Set5"], "images": 1} for s in test_sets}


def trivial_profile(model, *, device):
    return {k: METRICS[k] for k in ("params", "flops", "latency_ms", "latency_source")}


def bare_trainable(config):
    from ray import tune

    tune.report({**METRICS, "status": "complete", "error": ""})


def run_bare(ids: list[str], out: Path) -> tuple[float, float]:
    from ray import tune

    setup = time_call(lambda: tune.Tuner(
        bare_trainable,
        param_space={"config_id": tune.grid_search(ids)},
        tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(name="bare", storage_path=str(out), verbose=0),
    ))
    fit_s = time_call(setup.result.fit).wall_s[0]
    return (setup.wall_s[0] + fit_s) / len(ids), fit_s / len(ids)


class AskConfigId:
    """Define-by-run space of the Tune + OptunaSearch baseline: one categorical config id."""

    def __init__(self, ids: list[str]):
        self.ids = ids

    def __call__(self, trial):
        trial.suggest_categorical("config_id", self.ids)


def run_tune_optuna(ids: list[str], out: Path) -> tuple[float, float]:
    """Ray Tune + OptunaSearch (in memory, random sampler), no suite code: Tune's own cost."""
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    def make_tuner():
        searcher = OptunaSearch(space=AskConfigId(ids), metric=["psnr_Set5", "params"], mode=["max", "min"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
        return tune.Tuner(
            bare_trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=len(ids), max_concurrent_trials=1,
                                        reuse_actors=True),
            run_config=tune.RunConfig(name="tune-optuna", storage_path=str(out), verbose=0),
        )

    setup = time_call(make_tuner)
    fit_s = time_call(setup.result.fit).wall_s[0]
    return (setup.wall_s[0] + fit_s) / len(ids), fit_s / len(ids)


def run_suite(space: Path, trials: int, out: Path) -> tuple[float, float]:
    options = StudyOptions(space=str(space), out=str(out), sampler="grid", trials=trials,
                           concurrency=1, verbose=0)
    pipeline = TrialPipeline(build=trivial_build, evaluate=trivial_evaluate, profile=trivial_profile)
    timed = time_call(lambda: run_study(options, pipeline=pipeline))
    summary, elapsed = timed.result, timed.wall_s[0]
    assert summary.completed == trials, f"{summary.completed} of {trials} trials completed"
    return elapsed / trials, summary.fit_s / trials


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)

    import ray
    import ray.cloudpickle

    from search.space import load_space
    from search.study.runner import _quiet_tune

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    _quiet_tune(0)
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        space_path = tmp / "overhead.yaml"
        space_path.write_text(SPACE)
        ids = [c["config_id"] for c in load_space(space_path).enumerate()][: args.trials]
        run_bare(ids[:4], tmp / "warmup")  # first worker start-up is not per-trial overhead
        runs = {"bare": [], "tune+optuna": [], "suite": []}
        for repeat in range(args.repeats):
            runs["bare"].append(run_bare(ids, tmp / f"bare{repeat}"))
            runs["tune+optuna"].append(run_tune_optuna(ids, tmp / f"tune-optuna{repeat}"))
            runs["suite"].append(run_suite(space_path, len(ids), tmp / f"suite{repeat}"))
            print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1][0] * 1000:.1f} ms/trial" for k, v in runs.items()),
                  flush=True)
    ray.shutdown()
    print(f"trials per run: {len(ids)}, runs per side: {args.repeats}, cpus: {args.num_cpus}, "
          "one trial at a time, medians")
    for label, index, note in (("whole run", 0, "incl. each side's setup: Tuner; suite also opens SQLite"),
                               ("Tuner.fit only", 1, "trials only")):
        bare_s = statistics.median(r[index] for r in runs["bare"])
        suite_s = statistics.median(r[index] for r in runs["suite"])
        print(f"{label:15s} bare {bare_s * 1000:7.1f} ms/trial | suite {suite_s * 1000:7.1f} ms/trial | "
              f"overhead {(suite_s - bare_s) * 1000:+6.1f} ms/trial | ratio {suite_s / bare_s:.3f} "
              f"(goal <= 1.15; {note})")
    tune_optuna = statistics.median(r[1] for r in runs["tune+optuna"])
    suite_fit = statistics.median(r[1] for r in runs["suite"])
    print(f"for reference: Ray Tune + OptunaSearch alone (in memory, no suite code) {tune_optuna * 1000:.1f} ms/trial "
          f"(Tuner.fit); suite / that = {suite_fit / tune_optuna:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
