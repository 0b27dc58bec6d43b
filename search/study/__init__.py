"""Ray Tune + Optuna studies: trial = build -> train -> evaluate -> profile -> one trials.csv row."""

from search.study.runner import SAMPLERS, StudyOptions, StudySummary, dry_run, run_study  # noqa: F401
from search.study.trial import TrialPipeline, TrialSettings, run_trial, safe_trial  # noqa: F401
