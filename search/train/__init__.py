"""Training: ``train_model`` (L1 + each family's extra terms, Adam, LR schedule) and budgets."""

from search.train.budgets import (  # noqa: F401
    BUDGET_DEFAULTS,
    Budget,
    get_budget,
    learning_rate_at,
    list_budgets,
    load_budget,
    resolve_budget,
    validate_budget,
)
from search.train.losses import training_loss  # noqa: F401
from search.train.trainer import (  # noqa: F401
    TrainingDiverged,
    protocol_for,
    seed_everything,
    train_model,
)
