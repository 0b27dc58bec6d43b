"""Cross-field constraints: small arithmetic/boolean expressions over a family's fields.

``F * R == int(F * R)`` or ``D >= S and scale < 4``. Expressions are parsed with :mod:`ast`
and evaluated by walking a whitelist of node types (numbers, names, arithmetic, comparisons,
``and``/``or``/``not``, a few pure functions), never with ``eval``, so a space file cannot
run code.

Expressions are also bounded so that a hostile file cannot hang or crash the loader: at most
:data:`MAX_EXPRESSION_CHARS` characters and :data:`MAX_EXPRESSION_DEPTH` levels of nesting,
arithmetic on numbers only, exponents (and ``round`` digits) within :data:`MAX_EXPONENT`,
and no integer wider than :data:`MAX_INT_BITS` bits along the way (``C ** 9999999999``
would otherwise compute for hours).
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Iterable

# Longer than any real rule (the longest shipped one is ~50 characters); keeps the parser
# (RecursionError / MemoryError on 20,000 nested `not`s) and error messages small.
MAX_EXPRESSION_CHARS = 500
# AST levels; evaluation recurses once per level, far below Python's recursion limit.
MAX_EXPRESSION_DEPTH = 50
# |exponent| of `**` and |ndigits| of round(): hyper-parameter rules need small powers
# (2 ** D, 10 ** -3); 10 ** 64 is already far past any channel count.
MAX_EXPONENT = 64
# Widest integer an expression may produce (about 308 decimal digits, the float range):
# every step stays microseconds, where unbounded powers/products take minutes and memory.
MAX_INT_BITS = 1024


class ConstraintEvalError(ArithmeticError):
    """Evaluating the expression would exceed a bound (huge power, too wide an integer)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bool is an int: True + 1 is fine


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ConstraintEvalError(f"an intermediate integer exceeds {MAX_INT_BITS} bits")
    return value


def _power(base: Any, exponent: Any) -> Any:
    # Checked before computing: the result's size is known from the operands' sizes.
    if _is_number(exponent) and abs(exponent) > MAX_EXPONENT:
        raise ConstraintEvalError(f"exponent {exponent} is too large (|exponent| <= {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
            and base.bit_length() * exponent > MAX_INT_BITS:
        raise ConstraintEvalError(f"{base} ** {exponent} exceeds {MAX_INT_BITS} bits")
    return base ** exponent


def _round(value: Any, ndigits: Any = None) -> Any:
    # round(5, -10**9) computes 10**(10**9) first.
    if _is_number(ndigits) and abs(ndigits) > MAX_EXPONENT:
        raise ConstraintEvalError(f"round() digits {ndigits} out of range (|ndigits| <= {MAX_EXPONENT})")
    return round(value) if ndigits is None else round(value, ndigits)


_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
FUNCTIONS = {
    "int": int, "float": float, "round": _round, "abs": abs, "min": min, "max": max,
    "floor": math.floor, "ceil": math.ceil, "log2": math.log2, "is_integer": lambda x: float(x).is_integer(),
}


class ConstraintSyntaxError(ValueError):
    """The expression is not valid or uses something outside the whitelist."""


class Constraint:
    """A parsed expression; ``holds(config)`` is True when the configuration satisfies it."""

    def __init__(self, expression: str, fields: Iterable[str]):
        self.expression = expression
        if len(expression) > MAX_EXPRESSION_CHARS:
            raise ConstraintSyntaxError(
                f"expression is {len(expression)} characters long; at most {MAX_EXPRESSION_CHARS}"
            )
        try:
            tree = ast.parse(expression, mode="eval")
        except SyntaxError as exc:
            raise ConstraintSyntaxError(f"invalid expression {expression!r}: {exc.msg}") from None
        except (ValueError, RecursionError, MemoryError) as exc:  # e.g. a NUL character
            raise ConstraintSyntaxError(f"invalid expression {expression!r}: {type(exc).__name__}") from None
        self._tree = tree.body
        depth = _depth(self._tree)
        if depth > MAX_EXPRESSION_DEPTH:
            raise ConstraintSyntaxError(
                f"expression nested {depth} levels deep; at most {MAX_EXPRESSION_DEPTH}"
            )
        known = set(fields)
        nodes = list(ast.walk(self._tree))
        for node in nodes:
            self._check_node(node, known)
        # Upper bound on the nodes one evaluation visits: the loader multiplies it by the
        # number of grid points to bound the work of checking a grid at load time.
        self.size = len(nodes)

    def _check_node(self, node: ast.AST, known: set[str]) -> None:
        allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp,
                   ast.Compare, ast.Call, ast.Name, ast.Load, ast.Constant, ast.IfExp,
                   *_BINARY, *_UNARY, *_COMPARE)
        if not isinstance(node, allowed):
            raise ConstraintSyntaxError(
                f"{type(node).__name__} is not allowed in constraint {self.expression!r}"
            )
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                raise ConstraintSyntaxError(
                    f"only {', '.join(sorted(FUNCTIONS))}(...) may be called in {self.expression!r}"
                )
        elif isinstance(node, ast.Name) and node.id not in known and node.id not in FUNCTIONS:
            raise ConstraintSyntaxError(
                f"unknown name {node.id!r} in constraint {self.expression!r} "
                f"(fields: {', '.join(sorted(known))})"
            )
        elif isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool, str)):
            raise ConstraintSyntaxError(f"constant {node.value!r} not allowed in {self.expression!r}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            # A literal exponent out of range is a mistake in the file: say so at load time,
            # also for families whose grid is not checked point by point.
            exponent = _literal_number(node.right)
            if exponent is not None and abs(exponent) > MAX_EXPONENT:
                raise ConstraintSyntaxError(
                    f"exponent {exponent} too large in {self.expression!r} (|exponent| <= {MAX_EXPONENT})"
                )
        elif isinstance(node, ast.Constant) and isinstance(node.value, int) \
                and node.value.bit_length() > MAX_INT_BITS:
            raise ConstraintSyntaxError(f"a number wider than {MAX_INT_BITS} bits in {self.expression!r}")

    def holds(self, config: dict[str, Any]) -> bool:
        """True when ``config`` satisfies the rule; ConstraintEvalError past a size bound."""
        return bool(self._evaluate(self._tree, config))

    def _evaluate(self, node: ast.AST, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.BinOp):
            left, right = self._evaluate(node.left, env), self._evaluate(node.right, env)
            # Numbers only: "x" * 10**9 or "%0999999999d" % 1 would build gigabyte strings.
            for operand in (left, right):
                if not _is_number(operand):
                    raise ConstraintEvalError(f"arithmetic needs numbers, got {_short(operand)}")
            return _check_int(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._evaluate(node.operand, env))
        if isinstance(node, ast.BoolOp):
            values = (self._evaluate(v, env) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = self._evaluate(node.left, env)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._evaluate(right_node, env)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            branch = node.body if self._evaluate(node.test, env) else node.orelse
            return self._evaluate(branch, env)
        if isinstance(node, ast.Call):
            return _check_int(FUNCTIONS[node.func.id](*(self._evaluate(a, env) for a in node.args)))
        raise ConstraintSyntaxError(f"cannot evaluate {type(node).__name__}")  # unreachable: checked

    def __repr__(self) -> str:
        return f"Constraint({self.expression!r})"


def _depth(tree: ast.AST) -> int:
    """Nesting depth of an AST, computed without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _literal_number(node: ast.AST) -> int | float | None:
    """The value of ``3`` or ``-3`` written in the expression; None for anything else."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and _is_number(node.value):
        return sign * node.value
    return None


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
