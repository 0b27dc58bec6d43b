"""SR model families. Each file registers one family (see :mod:`search.models.registry`)."""

from search.models.registry import (  # noqa: F401
    FamilyInfo,
    ModelSpec,
    SRModel,
    create_model,
    format_model_id,
    get_family,
    list_families,
    load_model_files,
    parse_model_id,
    register_family,
    released_weights_path,
)
from search.models.weights import load_state_dict, load_weights  # noqa: F401
