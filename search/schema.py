"""One validator for the suite's YAML formats: a JSON Schema (Draft 2020-12) per format,
checked with ``jsonschema``, and its errors said in one plain line naming the key path.

The formats and where their schemas live:

* space files ``spaces/*.yaml``: ``SPACE_SCHEMA`` in :mod:`search.space.loader`;
* device profiles ``devices/*.yaml``: ``DEVICE_SCHEMA`` in :mod:`search.profile.devices`;
* ``params.yaml``'s ``budgets:``: ``PARAMS_SCHEMA`` / ``BUDGET_SCHEMA`` in
  :mod:`search.train.budgets`.

A schema says the structure and the types (which keys, which are required, text / integer /
list, enumerations, bounds); what a schema cannot say (a family exists in the registry, a
constraint expression parses, a grid is small enough, a protocol exists) stays code, run
after the schema check.

:func:`validate` raises a :class:`~search.errors.UserError` (or the given subclass) whose
message is ``<file>: <key path>: <problem>``, e.g.::

    spaces/bad.yaml: fixed.budget.stpes: unknown key (did you mean steps?)
    params.yaml: budgets.quick.lr_schedule: expected one of constant, cosine, step, got 'cosin' (did you mean cosine?)
    devices/pi.yaml: output_size[1]: must be >= 1, got 0

Of several problems the most relevant one is reported (``jsonschema.exceptions.best_match``:
the one highest up in the document, of siblings the first): deterministic.

Two details of the schemas written for this module:

* ``"type": "number"`` means a *finite* number here (YAML's ``.inf`` and ``.nan`` are not
  numbers a file of this suite ever wants); ``"integer"`` is JSON Schema's (``2.0`` is one);
* a schema node may carry ``"errorMessage"`` (as in ajv-errors): a text replacing the
  message of any failed keyword of that node, or ``{keyword: text}`` for some keywords;
  ``{got}`` in it is replaced by the offending value. ``"description"`` of a property is
  said when that property is missing.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match, relevance

from search.errors import UserError

MAX_SHOWN_CHARS = 80
MAX_LISTED = 20  # allowed keys / enumeration values listed in a message
# A number written as text (YAML 1.1 reads 1e-4 as text): mantissa, exponent.
NUMBER_TEXT = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+))([eE][-+]?\d+)?")

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _is_finite_number(checker, instance) -> bool:
    if isinstance(instance, bool):
        return False
    if isinstance(instance, float):
        return math.isfinite(instance)
    return isinstance(instance, int)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _is_finite_number),
)
_VALIDATORS: dict[int, tuple[dict, Any]] = {}


def validator_for(schema: dict):
    """The (cached) validator of ``schema``; the schema itself is checked the first time."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        jsonschema.Draft202012Validator.check_schema(schema)
        cached = _VALIDATORS[id(schema)] = (schema, _Validator(schema))
    return cached[1]


@dataclass(frozen=True)
class Problem:
    """A schema violation: where (``fixed.budget.steps``, ``families[2].params.C``; "" for
    the whole document) and what, in words."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: Any) -> str:
    """A value as a message shows it: ``'abc'``, ``5``, ``true``, ``null``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}" if value else "an empty list"
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return "a very large integer"
    return shorten(text)


def join_path(prefix: str, path: str) -> str:
    """``fixed.budget`` + ``steps`` -> ``fixed.budget.steps``; + ``[1]`` -> ``fixed.budget[1]``."""
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _key_path(document: Any, parts) -> str:
    """The error's location as ``a.b[2].c``: list positions in brackets, mapping keys dotted."""
    text, node = "", document
    for part in parts:
        if isinstance(node, list):
            text += f"[{part}]"
        else:
            text = join_path(text, shorten(str(part)))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return text


def _listing(values) -> str:
    values = [str(v) for v in values]
    more = f", ... ({len(values) - MAX_LISTED} more)" if len(values) > MAX_LISTED else ""
    return ", ".join(values[:MAX_LISTED]) + more


def _did_you_mean(word: Any, candidates) -> str:
    """`` (did you mean steps?)``: the closest candidate, and a second one only if as close."""
    word = str(word)
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=2, cutoff=0.6)
    ratios = [difflib.SequenceMatcher(None, word, c).ratio() for c in close]
    close = [c for c, r in zip(close, ratios) if r >= ratios[0] - 0.05]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _expected_types(types) -> str:
    types = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_WORDS.get(t, t) for t in types]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _numeric_text_hint(error: ValidationError) -> str:
    """Why a number is text: YAML 1.1 (PyYAML) reads ``1e-4`` and ``1.0e4`` as text (a float
    needs a dot and a signed exponent), or it was quoted."""
    types = error.validator_value if error.validator == "type" else ()
    types = [types] if isinstance(types, str) else list(types)
    text = error.instance.strip() if isinstance(error.instance, str) else ""
    match = NUMBER_TEXT.fullmatch(text)
    if not match or not {"number", "integer"} & set(types):
        return ""
    mantissa, exponent = match.group(1), match.group(2)
    if exponent is None:
        return " (a number in quotes is text; write it without quotes)"
    mantissa = mantissa if "." in mantissa else mantissa + ".0"
    exponent = exponent[1:] if exponent[1] in "+-" else "+" + exponent[1:]
    return f" (YAML reads {shorten(text, 30)} as text; write {mantissa}e{exponent})"


def _custom_message(error: ValidationError) -> str | None:
    if not isinstance(error.schema, dict):
        return None
    custom = error.schema.get("errorMessage")
    if isinstance(custom, dict):
        custom = custom.get(error.validator)
    if not isinstance(custom, str):
        return None
    return custom.replace("{got}", shown(error.instance))


def _message(error: ValidationError) -> tuple[str, str]:
    """(key appended to the error's path, the problem in words) of one jsonschema error."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    custom = _custom_message(error)
    if keyword == "required":
        missing = next((str(k) for k in value if k not in instance), str(value[0]))
        described = error.schema.get("properties", {}).get(missing, {})
        about = described.get("description") if isinstance(described, dict) else None
        return missing, custom or (f"missing (required: {about})" if about else "missing (required)")
    if keyword == "additionalProperties":
        properties = error.schema.get("properties", {})
        extra = next((k for k in instance if k not in properties), None)
        # readOnly: keys the code sets (a resolved budget's name), accepted but not advertised
        allowed = [k for k, v in properties.items() if not (isinstance(v, dict) and v.get("readOnly"))]
        hint = _did_you_mean(extra, allowed) or f" (allowed here: {_listing(allowed) or 'none'})"
        return shorten(str(extra)), custom or f"unknown key{hint}"
    if custom:
        return "", custom
    got = shown(instance)
    if keyword == "type":
        expected = _expected_types(value)
        if isinstance(instance, float) and not math.isfinite(instance) and "number" in str(value):
            expected = "a finite number"
        return "", f"expected {expected}, got {got}{_numeric_text_hint(error)}"
    if keyword == "enum":
        options = [shown(v) if not isinstance(v, str) else v for v in value]
        listed = " or ".join(options) if len(options) == 2 else f"one of {_listing(options)}"
        hint = _did_you_mean(instance, [v for v in value if isinstance(v, str)]) if isinstance(instance, str) else ""
        return "", f"expected {listed}, got {got}{hint}"
    if keyword == "const":
        return "", f"expected {shown(value)}, got {got}"
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if keyword in bounds:
        return "", f"must be {bounds[keyword]} {shown(value)}, got {got}"
    if keyword == "minItems":
        return "", ("empty list" if not instance else
                    f"needs at least {value} items, got {len(instance)}")
    if keyword == "maxItems":
        return "", f"may have at most {value} item{'s' if value != 1 else ''}, got {len(instance)}"
    if keyword == "minLength":
        return "", "empty text" if not instance else f"needs at least {value} characters, got {len(instance)}"
    if keyword == "maxLength":
        return "", f"{len(instance)} characters long; at most {value}"
    if keyword == "minProperties":
        return "", "empty mapping" if not instance else f"needs at least {value} keys"
    if keyword == "pattern":
        return "", f"expected text matching {value}, got {got}"
    if keyword in ("anyOf", "oneOf"):
        types = [s.get("type") for s in value if isinstance(s, dict) and "type" in s]
        if len(types) == len(value):
            flat = [t for ts in types for t in ([ts] if isinstance(ts, str) else ts)]
            return "", f"expected {_expected_types(dict.fromkeys(flat))}, got {got}"
        return "", f"{got} does not have any of the allowed forms"
    if keyword in (None, "not", "false"):
        return "", "not allowed here"
    return "", shorten(error.message, 200)


def _relevance_in(document: Any):
    """jsonschema's relevance (errors higher up first, ``anyOf``/``oneOf`` weak), with siblings
    ordered by their place in the document (the first wins) instead of by comparing their keys:
    a YAML mapping's keys may be of different types (``2`` and ``eSR-MAX``), which do not compare."""
    positions: dict[int, dict] = {}

    def place(error: ValidationError) -> tuple[int, ...]:
        out, node = [], document
        for part in error.absolute_path:
            if isinstance(node, dict):
                index = positions.get(id(node))
                if index is None:
                    index = positions[id(node)] = {key: i for i, key in enumerate(node)}
                out.append(-index.get(part, 0))
            else:
                out.append(-part if isinstance(part, int) else 0)
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
        return tuple(out)

    def key(error: ValidationError):
        default = relevance(error)
        # at the same place, an unknown key first: a misspelt key also makes a required one missing
        return (default[0], place(error), error.validator == "additionalProperties") + tuple(default[2:])

    return key


def find_problem(data: Any, schema: dict) -> Problem | None:
    """The most relevant violation of ``schema`` by ``data`` (None: ``data`` is valid)."""
    error = best_match(validator_for(schema).iter_errors(data), key=_relevance_in(data))
    if error is None:
        return None
    extra, message = _message(error)
    path = join_path(_key_path(data, error.absolute_path), extra)
    return Problem(path, message)


def validate(data: Any, schema: dict, *, source: object | None = None, what: str | None = None,
             at: str = "", error: type[UserError] = UserError) -> None:
    """Check ``data`` (a parsed YAML document, or a part of one) against ``schema``.

    Raises ``error`` (a :class:`UserError`) with one line: ``<source>: <what>: <key path>:
    <problem>``. ``source`` is the file (omitted when None); ``what`` names the data where
    there is no file to name (``budget 'custom'``); ``at`` is the key path of ``data``
    inside its file (``fixed.budget``), put before the error's own path.
    """
    problem = find_problem(data, schema)
    if problem is None:
        return
    text = ": ".join(part for part in (what, join_path(at, problem.path), problem.message) if part)
    raise error(text, path=source)
