"""Strict JSON for everything the suite prints or writes: JSON has no NaN or Infinity.

A PSNR of an output identical to its target is +inf, a failed metric NaN; ``json.dumps``
would write the tokens ``Infinity``/``NaN``, which other JSON readers refuse. Here they
become ``null`` and the writer runs with ``allow_nan=False``, so a new non-finite path fails
loudly instead of writing invalid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (numpy floats included) replaced by ``None``."""
    if isinstance(value, float):  # numpy.float64 is a float subclass
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def dumps_json(value: Any, **kwargs) -> str:
    """Strict JSON (``allow_nan=False``): non-finite floats are written as ``null``."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)
