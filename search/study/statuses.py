"""What a row of a study's trials.csv can say in its ``status`` column (no heavy imports:
reports read these too)."""

STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"  # the configuration's own failure (diverged, does not build, ...)
# The machine failed the trial, not the configuration (disk full, out of memory, its worker
# killed): the row stays as a record, and --resume runs the configuration again.
STATUS_INFRASTRUCTURE = "infrastructure_failed"
# A sampler proposed a configuration the study had already completed: not trained again; the
# row carries the earlier trial's objectives (so Optuna learns the same values) and does not
# count towards --trials.
STATUS_REPEAT = "repeat"
# Rows that count as finished trials of a study.
FINISHED_STATUSES = (STATUS_COMPLETE, STATUS_FAILED)
# Rows of trials that failed, whoever's fault.
FAILED_STATUSES = (STATUS_FAILED, STATUS_INFRASTRUCTURE)
