"""The constraint language of space files (search/space/constraints.py), table by table.

Every expected value below is written by hand from Python's own semantics (the language is a
whitelisted subset of Python expressions), with the arithmetic in the comment where it is not
obvious; none is computed by the module under test.
"""

from __future__ import annotations

import ast

import pytest

from search.space.constraints import (
    Constraint,
    ConstraintEvalError,
    ConstraintSyntaxError,
)

CALLABLE = "abs, ceil, float, floor, int, is_integer, log2, max, min, round"  # FUNCTIONS, sorted


def value(expression: str, **env):
    """What the expression evaluates to (not only its truth), for the operator tables."""
    constraint = Constraint(expression, env)
    return constraint._evaluate(constraint._tree, env)


def holds(expression: str, **env) -> bool:
    return Constraint(expression, env).holds(env)


# ---------------------------------------------------------------- every operator and function

@pytest.mark.parametrize("expression, env, expected", [
    # arithmetic on integers
    ("K + C", {"K": 3, "C": 4}, 7),
    ("K - C", {"K": 3, "C": 4}, -1),
    ("K * C", {"K": 3, "C": 4}, 12),
    ("K / C", {"K": 3, "C": 4}, 0.75),
    ("K // 2", {"K": 7}, 3),
    ("-K // 2", {"K": 7}, -4),  # floor(-3.5)
    ("K % 3", {"K": 7}, 1),
    ("-K % 3", {"K": 7}, 2),  # Python's modulo takes the divisor's sign: -7 = -3 * 3 + 2
    ("K ** 2", {"K": 7}, 49),
    ("K - C * 2", {"K": 10, "C": 3}, 4),  # precedence: 10 - 6
    ("(K - C) * 2", {"K": 10, "C": 3}, 14),
    ("2 ** 40", {}, 1099511627776),
    ("2 ** +40", {}, 1099511627776),
    ("2 ** -2", {}, 0.25),
    ("4 ** 0.5", {}, 2.0),  # int base, float exponent
    ("2.5 ** 2", {}, 6.25),  # float base
    ("1e-3 * 1000", {}, 1.0),
    ("True + 1", {}, 2),  # booleans are numbers
    # unary operators
    ("-K", {"K": 7}, -7),
    ("+K", {"K": 7}, 7),
    ("--K", {"K": 7}, 7),
    ("not K", {"K": 0}, True),
    ("not K", {"K": 3}, False),
    # comparisons
    ("K == 3", {"K": 3}, True),
    ("K == 3", {"K": 4}, False),
    ("K != 3", {"K": 3}, False),
    ("K != 3", {"K": 4}, True),
    ("K < C", {"K": 3, "C": 4}, True),
    ("K < C", {"K": 4, "C": 4}, False),
    ("K <= C", {"K": 4, "C": 4}, True),
    ("K <= C", {"K": 5, "C": 4}, False),
    ("K > C", {"K": 4, "C": 4}, False),
    ("K > C", {"K": 5, "C": 4}, True),
    ("K >= C", {"K": 4, "C": 4}, True),
    ("K >= C", {"K": 3, "C": 4}, False),
    ("mode == 'fast'", {"mode": "fast"}, True),  # text fields compare, they just cannot compute
    ("mode == 'fast'", {"mode": "slow"}, False),
    # chained comparisons: each link compares its two neighbours
    ("1 < K < 3", {"K": 2}, True),
    ("1 < K < 3", {"K": 3}, False),
    ("1 < K < 3", {"K": 1}, False),
    ("K < C < D", {"K": 1, "C": 5, "D": 3}, False),  # 1 < 5 but not 5 < 3 (1 < 3 does not count)
    ("K < C <= D", {"K": 1, "C": 3, "D": 3}, True),
    # and / or give True or False (not Python's last operand)
    ("K > 2 and C > 2", {"K": 3, "C": 4}, True),
    ("K > 2 and C > 2", {"K": 3, "C": 1}, False),
    ("K > 2 and C > 2", {"K": 1, "C": 4}, False),
    ("K > 5 or C > 2", {"K": 3, "C": 4}, True),
    ("K > 2 or C > 5", {"K": 3, "C": 4}, True),
    ("K > 5 or C > 5", {"K": 3, "C": 4}, False),
    ("K and C", {"K": 3, "C": 4}, True),
    ("K or C", {"K": 0, "C": 0}, False),
    ("K > 5 or C > 2 and K < 2", {"K": 3, "C": 4}, False),  # and binds tighter: F or (T and F)
    # if-expressions
    ("K if K > C else C", {"K": 3, "C": 4}, 4),
    ("K if K > C else C", {"K": 5, "C": 4}, 5),
    # the whitelisted functions
    ("int(K / 2)", {"K": 7}, 3),
    ("int(-3.5)", {}, -3),  # truncates towards zero
    ("float(K)", {"K": 3}, 3.0),
    ("round(2.5)", {}, 2),  # half to even
    ("round(3.5)", {}, 4),
    ("round(3.14159, 2)", {}, 3.14),
    ("round(1234, -2)", {}, 1200),
    ("abs(K)", {"K": -3}, 3),
    ("min(K, C)", {"K": 3, "C": 4}, 3),
    ("max(K, C)", {"K": 3, "C": 4}, 4),
    ("min(3, 1, 2)", {}, 1),
    ("floor(2.7)", {}, 2),
    ("floor(-2.5)", {}, -3),
    ("ceil(2.1)", {}, 3),
    ("log2(8)", {}, 3.0),
    ("is_integer(6 / 3)", {}, True),
    ("is_integer(6 / 4)", {}, False),
    # the shipped kind of rule: F * R is a whole number
    ("F * R == int(F * R)", {"F": 0.5, "R": 6}, True),  # 3.0 == 3
    ("F * R == int(F * R)", {"F": 0.5, "R": 5}, False),  # 2.5 != 2
])
def test_operator_table(expression, env, expected):
    result = value(expression, **env)
    assert result == expected and type(result) is type(expected), (expression, result)


@pytest.mark.parametrize("expression, env, expected", [
    ("K", {"K": 3}, True),
    ("K - 3", {"K": 3}, False),
    ("D >= S and scale < 4", {"D": 3, "S": 3, "scale": 2}, True),
    ("D >= S and scale < 4", {"D": 3, "S": 3, "scale": 4}, False),
])
def test_holds_is_the_truth_of_the_value(expression, env, expected):
    assert Constraint(expression, env).holds(env) is expected


def test_and_or_and_if_only_evaluate_what_they_need():
    # The right operand would divide by zero: and/or stop early, if evaluates one branch.
    assert holds("C == 0 or K / C > 1", K=3, C=0) is True
    assert holds("C != 0 and K / C > 1", K=3, C=0) is False
    assert holds("(K / C if C != 0 else 0) == 0", K=3, C=0) is True
    with pytest.raises(ZeroDivisionError):  # not swallowed: the loader names the configuration
        holds("K / C > 1", K=3, C=0)


# ---------------------------------------------------------------- what the parser refuses

@pytest.mark.parametrize("expression, message", [
    ("K >", "invalid expression 'K >': invalid syntax"),
    ("(K", "invalid expression '(K': '(' was never closed"),
    ("K\x00", "invalid expression 'K\\x00': source code string cannot contain null bytes"),
    ("K.real > 1", "Attribute is not allowed in constraint 'K.real > 1'"),
    ("[K][0] > 1", "Subscript is not allowed"),
    ("K in (1, 2)", "In is not allowed"),
    ("K & 1", "BitAnd is not allowed"),
    ("K << 1", "LShift is not allowed"),
    ("~K", "Invert is not allowed"),
    ("K @ C", "MatMult is not allowed"),
    ("(K := 3) > 1", "NamedExpr is not allowed"),
    ("lambda: K", "Lambda is not allowed"),
    ("f'{K}' == '3'", "JoinedStr is not allowed"),
    ("min(*C) > 1", "Starred is not allowed"),
    # calls: only a whitelisted name, with positional arguments only
    ("open(K)", f"only {CALLABLE}(...) may be called in 'open(K)'"),
    ("round(K, ndigits=2) > 1", f"only {CALLABLE}(...) may be called"),
    ("K.bit_length() > 1", f"only {CALLABLE}(...) may be called"),
    ("(lambda: K)() > 1", f"only {CALLABLE}(...) may be called"),
    # names and constants
    ("Q > 1", "unknown name 'Q' in constraint 'Q > 1' (fields: C, K)"),
    ("K == None", "constant None not allowed in 'K == None'"),
    ("K == b'x'", "constant b'x' not allowed"),
    ("K == 1j", "constant 1j not allowed"),
    ("K == ...", "constant Ellipsis not allowed"),
])
def test_rejected_expressions(expression, message):
    with pytest.raises(ConstraintSyntaxError) as caught:
        Constraint(expression, ["K", "C"])
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("error", [ValueError, RecursionError, MemoryError])
def test_parser_failures_are_syntax_errors(monkeypatch, error):
    # A hostile text can make ast.parse itself fail in these ways; the loader only knows ours.
    def failing_parse(*args, **kwargs):
        raise error("boom")

    monkeypatch.setattr(ast, "parse", failing_parse)
    with pytest.raises(ConstraintSyntaxError, match=rf"invalid expression 'K > 1': {error.__name__}$"):
        Constraint("K > 1", ["K"])


def test_size_counts_the_nodes_and_repr_shows_the_text():
    constraint = Constraint("K > 1", ["K"])
    assert constraint.size == 5  # Compare, Name K, Load, Gt, Constant 1
    assert repr(constraint) == "Constraint('K > 1')"
    assert constraint.expression == "K > 1"


# ---------------------------------------------------------------- bounds against hostile files

def test_expression_length_limit_is_500_characters():
    at_limit = "K" + " " * 495 + "== K"  # 1 + 495 + 4 = 500 characters
    assert len(at_limit) == 500 and holds(at_limit, K=1)
    with pytest.raises(ConstraintSyntaxError, match="expression is 501 characters long; at most 500$"):
        Constraint(at_limit + " ", ["K"])


def test_nesting_limit_is_50_levels():
    # Levels: each unary minus is one, then the name K and its Load context: n minuses -> n + 2.
    assert value("-" * 48 + "K", K=7) == 7  # 50 levels; (-1) ** 48 * 7
    with pytest.raises(ConstraintSyntaxError, match="expression nested 51 levels deep; at most 50$"):
        Constraint("-" * 49 + "K", ["K"])


@pytest.mark.parametrize("expression, exponent", [
    ("K < 2 ** 65", "65"), ("K < 2 ** +65", "65"), ("K < 2 ** -65", "-65"), ("K < 2 ** 65.5", "65.5"),
])
def test_literal_exponent_over_64_is_refused_at_load(expression, exponent):
    with pytest.raises(ConstraintSyntaxError) as caught:
        Constraint(expression, ["K"])
    assert str(caught.value) == f"exponent {exponent} too large in {expression!r} (|exponent| <= 64)"


@pytest.mark.parametrize("expression, expected", [
    ("2 ** 64", 18446744073709551616),
    ("2 ** +64", 18446744073709551616),
    ("2 ** -64", 1 / 18446744073709551616),
])
def test_literal_exponent_of_64_is_allowed(expression, expected):
    assert value(expression) == expected


@pytest.mark.parametrize("exponent, expected", [
    (64, 18446744073709551616), (-64, 1 / 18446744073709551616), (0, 1), (1, 2),
])
def test_computed_exponent_up_to_64(exponent, expected):
    assert value("B ** E", B=2, E=exponent) == expected


@pytest.mark.parametrize("exponent", [65, -65, 64.5])
def test_computed_exponent_over_64_is_an_evaluation_error(exponent):
    with pytest.raises(ConstraintEvalError, match=rf"^exponent {exponent} is too large \(\|exponent\| <= 64\)$"):
        value("B ** E", B=2, E=exponent)


def test_power_whose_result_could_exceed_1024_bits_is_refused_before_computing():
    # 2 ** 31 has 32 bits: 32 * 32 = 1024 bits at most is allowed (the result 2 ** 992).
    assert value("B ** E", B=2 ** 31, E=32) == 2 ** 992
    # 2 ** 40 has 41 bits: 41 * 25 = 1025 > 1024, refused although 2 ** 1000 would fit.
    with pytest.raises(ConstraintEvalError, match=r"^1099511627776 \*\* 25 exceeds 1024 bits$"):
        value("B ** E", B=2 ** 40, E=25)
    # a huge base to the first power is refused by the same rule (1025 * 1 bits)
    with pytest.raises(ConstraintEvalError, match=r"\*\* 1 exceeds 1024 bits$"):
        value("B ** E", B=2 ** 1024, E=1)


def test_intermediate_integers_are_limited_to_1024_bits():
    assert value("A * B", A=2 ** 1000, B=2 ** 23) == 2 ** 1023  # bit_length 1024
    with pytest.raises(ConstraintEvalError, match="^an intermediate integer exceeds 1024 bits$"):
        value("A * B", A=2 ** 1000, B=2 ** 24)  # 2 ** 1024: bit_length 1025
    with pytest.raises(ConstraintEvalError, match="^an intermediate integer exceeds 1024 bits$"):
        value("abs(A)", A=-(2 ** 1024))  # function results are checked too


def test_integer_literals_are_limited_to_1024_bits():
    widest = str(2 ** 1024 - 1)  # 1024 bits
    assert holds(f"K < {widest}", K=1)
    too_wide = str(2 ** 1024)
    with pytest.raises(ConstraintSyntaxError, match="a number wider than 1024 bits"):
        Constraint(f"K < {too_wide}", ["K"])


@pytest.mark.parametrize("digits, expected", [(64, 1.5), (-64, 0.0), (2, 1.5)])
def test_round_digits_up_to_64(digits, expected):
    assert value("round(X, N)", X=1.5, N=digits) == expected


@pytest.mark.parametrize("digits", [65, -65])
def test_round_digits_over_64_are_an_evaluation_error(digits):
    with pytest.raises(ConstraintEvalError, match=rf"^round\(\) digits {digits} out of range \(\|ndigits\| <= 64\)$"):
        value("round(X, N)", X=1.5, N=digits)


@pytest.mark.parametrize("expression, env, shown", [
    ("S * 2", {"S": "a" * 38}, "'" + "a" * 38 + "'"),  # repr of 40 characters: shown whole
    ("2 * S", {"S": "a" * 39}, "'" + "a" * 36 + "..."),  # 41: cut to 37 characters and '...'
    ("'%0999999999d' % K", {"K": 1}, "'%0999999999d'"),
    ("N + 1", {"N": None}, "None"),
    ("S - 1", {"S": "x"}, "'x'"),
])
def test_arithmetic_on_text_is_refused(expression, env, shown):
    with pytest.raises(ConstraintEvalError) as caught:
        value(expression, **env)
    assert str(caught.value) == f"arithmetic needs numbers, got {shown}"
    assert isinstance(caught.value, ArithmeticError)
