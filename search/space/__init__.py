"""Declarative search spaces: YAML files -> validated :class:`Space` -> configurations with ids."""

from search.space.loader import check_data_sets, load_space, parse_space  # noqa: F401
from search.space.space import (  # noqa: F401
    FamilySpace,
    Objective,
    Space,
    StudySettings,
    parse_objectives,
)
from search.space.values import csv_value, format_value  # noqa: F401
