"""Cross-field constraints: small arithmetic/boolean expressions over a family's fields.

``F * R == int(F * R)`` or ``D >= S and scale < 4``. Expressions are parsed with :mod:`ast`
and evaluated by walking a whitelist of node types (numbers, names, arithmetic, comparisons,
``and``/``or``/``not``, a few pure functions), never with ``eval``, so a space file cannot
run code.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Iterable

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
FUNCTIONS = {
    "int": int, "float": float, "round": round, "abs": abs, "min": min, "max": max,
    "floor": math.floor, "ceil": math.ceil, "log2": math.log2, "is_integer": lambda x: float(x).is_integer(),
}


class ConstraintSyntaxError(ValueError):
    """The expression is not valid or uses something outside the whitelist."""


class Constraint:
    """A parsed expression; ``holds(config)`` is True when the configuration satisfies it."""

    def __init__(self, expression: str, fields: Iterable[str]):
        self.expression = expression
        try:
            tree = ast.parse(expression, mode="eval")
        except SyntaxError as exc:
            raise ConstraintSyntaxError(f"invalid expression {expression!r}: {exc.msg}") from None
        self._tree = tree.body
        known = set(fields)
        for node in ast.walk(self._tree):
            self._check_node(node, known)

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

    def holds(self, config: dict[str, Any]) -> bool:
        return bool(self._evaluate(self._tree, config))

    def _evaluate(self, node: ast.AST, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._evaluate(node.left, env), self._evaluate(node.right, env))
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
            return FUNCTIONS[node.func.id](*(self._evaluate(a, env) for a in node.args))
        raise ConstraintSyntaxError(f"cannot evaluate {type(node).__name__}")  # unreachable: checked

    def __repr__(self) -> str:
        return f"Constraint({self.expression!r})"
