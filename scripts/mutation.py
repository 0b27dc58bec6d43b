"""Mutation testing of the core modules with cosmic-ray: how many wrong versions do the tests catch?

    pip install -c requirements.lock -r requirements-mutation.txt   # once: cosmic-ray, pinned
    python scripts/mutation.py                       # every module below, then the report
    python scripts/mutation.py metrics constraints   # some modules (the report keeps the others)
    python scripts/mutation.py --list                # modules, their tests, mutant counts

Each module is mutated one operator at a time (flip a comparison, swap an arithmetic operator,
change a number, negate a condition, swap and/or, True/False, skip a loop, ...) and the module's
own tests run against each mutant. A mutant the tests fail on is *killed*; one they pass on
*survived*: a line the tests do not pin. Score = killed / (mutants - equivalent ones).

Mutants run in a copy of the working tree under a temporary folder (never in the checkout, which
other processes may be importing), with `PYTHONPATH` pointing at the copy. Equivalent mutants
(a change that cannot alter behaviour, e.g. `x <= 0` vs `x < 0` where x == 0 gives the same
result) are listed with a reason in `scripts/mutation_equivalent.yaml` and excluded from the
score; the report lists them. The report goes to `reports/mutation.md` and `reports/mutation.json`.

Not part of the README test command (minutes per module): run it before changing these modules.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = REPO / "scripts" / "mutation_equivalent.yaml"
REPORT_MD = REPO / "reports" / "mutation.md"
REPORT_JSON = REPO / "reports" / "mutation.json"


@dataclass(frozen=True)
class Target:
    module: str  # path of the mutated file
    tests: tuple[str, ...]  # its own tests: the only ones run against its mutants


TARGETS: dict[str, Target] = {
    "metrics": Target("search/evaluate/metrics.py", ("tests/test_metrics.py",)),
    "imresize": Target("search/data/imresize.py", ("tests/test_imresize.py",)),
    "color": Target("search/data/color.py", ("tests/test_color.py",)),
    "protocols": Target("search/data/protocols.py", ("tests/test_protocols.py",)),
    "constraints": Target("search/space/constraints.py", ("tests/test_constraints.py",)),
    "values": Target("search/space/values.py", ("tests/test_values.py",)),
    "pareto": Target("search/study/pareto.py", ("tests/test_pareto.py",)),
    "budgets": Target("search/train/budgets.py", ("tests/test_budgets.py",)),
}

# One mutant per operator, as in PIT's defaults: arithmetic swapped with its inverse (+ -, * /,
# // -> /, % -> //, ** -> *), a comparison moved across its boundary (< <=, > >=) and negated
# (< >=, <= >, == !=), unary minus dropped or swapped, `not` added, and/or swapped, True/False
# swapped, numbers +-1, loops skipped, break/continue swapped, exception types replaced. The
# other cross-replacements cosmic-ray can make (`+` -> `>>`, `<` -> `is`, ...) mostly fail with
# a TypeError at once and would multiply the run time by four; cosmic-ray's variable
# replacement/insertion are not operator mutants.
KEPT_BINARY = "Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Mod_FloorDiv|Pow_Mul"
KEPT_COMPARISON = "Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Lt_GtE|LtE_Gt|Gt_LtE|GtE_Lt|Eq_NotEq|NotEq_Eq|In_NotIn|NotIn_In"
EXCLUDED_OPERATORS = [
    rf"core/ReplaceBinaryOperator_(?!({KEPT_BINARY})$)",
    rf"core/ReplaceComparisonOperator_(?!({KEPT_COMPARISON})$)",
    r"core/ReplaceUnaryOperator_.*Invert",
    r"core/VariableReplacer",
    r"core/VariableInserter",
]

TIMEOUT_S = 120.0  # per mutant; a mutant that hangs the tests (e.g. an endless loop) is killed


def _cosmic_ray(tool: str) -> str:
    """Path of a cosmic-ray command installed beside this interpreter."""
    path = Path(sys.executable).parent / tool
    if path.exists():
        return str(path)
    found = shutil.which(tool)
    if found:
        return found
    raise SystemExit(
        f"error: {tool} not found; install the pinned tool: "
        "pip install -c requirements.lock -r requirements-mutation.txt"
    )


# Importing torch, numpy and pytest takes ~4 s; a module's tests take well under 1 s. So the tests
# of each mutant run in a child forked from one warm process that has imported those libraries
# but nothing of `search` (the child imports the mutated module fresh from disk). cosmic-ray's
# test command is a tiny standard-library client that asks the warm process to run the tests and
# exits with the tests' exit code.
CLIENT = """
import socket, sys
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b"run")
    s.shutdown(socket.SHUT_WR)
    code = int(s.makefile().read())
except (OSError, ValueError) as exc:
    print("mutation-client: no answer from the test server:", exc)
    sys.exit(97)
print("mutation-client: tests exited", code)
sys.exit(code)
"""
TESTS_RAN = "mutation-client: tests exited"  # in cosmic-ray's output of a mutant the tests judged
WARM_IMPORTS = ("numpy", "torch", "PIL.Image", "scipy.ndimage", "yaml", "pytest", "jsonschema")


def serve_tests(sock_path: str, workdir: str, pytest_args: list[str], timeout_s: float) -> None:
    """Warm test server: each connection forks a child that runs pytest once in `workdir`."""
    import importlib
    import signal
    import socket

    for name in WARM_IMPORTS:
        importlib.import_module(name)
    import pytest

    os.chdir(workdir)
    sys.path.insert(0, workdir)
    server = socket.socket(socket.AF_UNIX)
    server.bind(sock_path)
    server.listen(1)
    while True:
        conn, _ = server.accept()
        with conn:
            conn.makefile().read()
            pid = os.fork()
            if pid == 0:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                signal.alarm(int(timeout_s))  # a mutant that loops forever dies here
                try:
                    code = int(pytest.main(pytest_args))
                except BaseException:
                    code = 4
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.sendall(str(code if code >= 0 else 5).encode())
            except OSError:  # cosmic-ray gave up on this mutant (its timeout): serve the next one
                pass


def copy_tree(dest: Path) -> None:
    """Tracked and untracked (not ignored) files of the working tree, as they are now."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for rel in filter(None, listing):
        src = REPO / rel
        if not (src.is_file() or src.is_symlink()) or rel.startswith(("studies/", "reports/", "runs/")):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.path.realpath(src))
        else:
            shutil.copy2(src, target)


def code_version(target: Target) -> str:
    """Short commit of the checkout, + "+dirty" when the module or its tests have changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", target.module, *target.tests],
                           cwd=REPO, capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def load_equivalents() -> dict[str, list[dict]]:
    if not EQUIVALENT_FILE.exists():
        return {}
    data = yaml.safe_load(EQUIVALENT_FILE.read_text(encoding="utf-8")) or {}
    return {name: list(entries or []) for name, entries in data.items()}


def _matches(entry: dict, mutant: dict) -> bool:
    return (
        entry["operator"] == mutant["operator"]
        and entry["line"].strip() == mutant["source"]
        and entry.get("column", mutant["column"]) == mutant["column"]
        and entry.get("offset", mutant["offset"]) == mutant["offset"]
    )


def run_target(name: str, target: Target, workdir: Path, equivalents: list[dict]) -> dict:
    """Mutate one module in the copy at `workdir` and run its tests against each mutant."""
    for test in target.tests:
        if not (workdir / test).exists():
            raise SystemExit(f"error: {test}: the tests of {name} do not exist")
    session = workdir / f".mutation-{name}.sqlite"
    config = workdir / f".mutation-{name}.toml"
    client = workdir / ".mutation-client.py"
    client.write_text(CLIENT, encoding="utf-8")
    sock = workdir / ".mutation.sock"
    test_command = [sys.executable, "-S", "-I", str(client), str(sock)]
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{target.module}"\n'
        f"timeout = {TIMEOUT_S}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(shlex.join(test_command))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = {json.dumps(EXCLUDED_OPERATORS)}\n",
        encoding="utf-8",
    )
    # the copy's ../shared (released weights) is the checkout's: tests that need it must run
    shared = os.environ.get("SR_SHARED_ROOT", str(REPO.parent / "shared"))
    env = dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1", SR_SHARED_ROOT=shared)
    imported = subprocess.run(
        [sys.executable, "-c", "import search; print(search.__file__)"],
        cwd=workdir, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    if not Path(imported).resolve().is_relative_to(workdir.resolve()):
        raise SystemExit(f"error: the copy imports {imported}, not its own search package")

    def call(*args: str) -> str:
        return subprocess.run(args, cwd=workdir, env=env, check=True, capture_output=True, text=True).stdout

    call(_cosmic_ray("cosmic-ray"), "init", str(config), str(session))
    call(_cosmic_ray("cr-filter-operators"), str(session), str(config))
    baseline = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *target.tests],
        cwd=workdir, env=env, capture_output=True, text=True,
    )
    if baseline.returncode != 0:
        raise SystemExit(f"error: the tests of {name} fail without any mutation:\n{baseline.stdout[-2000:]}")
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(sock), str(workdir), "--",
         "-x", "-q", "-p", "no:cacheprovider", *target.tests],
        cwd=workdir, env=env,
    )
    proc = None
    try:
        for _ in range(600):
            if sock.exists() or server.poll() is not None:
                break
            time.sleep(0.1)
        # the warm path must pass the unmutated tests, or every mutant would look killed
        warm = subprocess.run(test_command, cwd=workdir, env=env, capture_output=True, text=True)
        if warm.returncode != 0:
            raise SystemExit(f"error: the tests of {name} fail through the warm test process "
                             f"(exit {warm.returncode}): {warm.stdout.strip()[-500:]}")
        started = time.monotonic()
        proc = subprocess.Popen(
            [_cosmic_ray("cosmic-ray"), "exec", str(config), str(session)], cwd=workdir, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        total = _pending(call, session)
        while proc.poll() is None:
            time.sleep(10)
            try:
                done = _done(call, session)
            except subprocess.CalledProcessError:  # the session file is being written: next time
                continue
            elapsed = time.monotonic() - started
            eta = elapsed / done * (total - done) if done else float("nan")
            print(f"  {name}: {done}/{total} mutants, {elapsed:.0f} s, ETA {eta:.0f} s", file=sys.stderr, flush=True)
        if proc.returncode != 0:
            raise SystemExit(f"error: cosmic-ray exec failed for {name} (exit {proc.returncode})")
        if server.poll() is not None:
            raise SystemExit(f"error: the warm test process of {name} died during the run; results not trusted")
    finally:
        for child in (proc, server):
            if child is not None and child.poll() is None:
                child.terminate()
                child.wait()
    source_lines = (workdir / target.module).read_text(encoding="utf-8").splitlines()
    return summarise(name, target, call(_cosmic_ray("cosmic-ray"), "dump", str(session)), source_lines, equivalents)


def _records(dump: str) -> list[tuple[dict, dict | None]]:
    return [json.loads(line) for line in dump.splitlines() if line.strip()]


def _pending(call, session: Path) -> int:
    return sum(1 for item, result in _records(call(_cosmic_ray("cosmic-ray"), "dump", str(session)))
               if not (result and result.get("worker_outcome") == "skipped"))


def _done(call, session: Path) -> int:
    return sum(1 for item, result in _records(call(_cosmic_ray("cosmic-ray"), "dump", str(session)))
               if result and result.get("worker_outcome") != "skipped")


def _is_keyword_only_marker(line: str, column: int, operator: str) -> bool:
    rest = line[column:]
    return operator.startswith("core/ReplaceBinaryOperator_Mul_") and rest[:1] == "*" and rest[1:].lstrip()[:1] in (",", ")")


def judge(result: dict) -> str:
    """cosmic-ray's result of one mutant -> killed | timeout | survived | error.

    Only a run whose tests were actually judged counts: the client prints TESTS_RAN when the
    warm process ran the tests; a mutant the tests never saw (cosmic-ray's exception / no-test /
    abnormal outcomes, a client that found no server) is an error, not a kill.
    """
    test_outcome, output = result.get("test_outcome"), result.get("output") or ""
    if result.get("worker_outcome") != "normal":
        return "error"
    if test_outcome == "survived":
        return "survived"
    if test_outcome == "killed":
        if output.strip() == "timeout":  # cosmic-ray's own timeout: the mutant hangs the tests
            return "timeout"
        return "killed" if TESTS_RAN in output else "error"
    return "error"


def summarise(name: str, target: Target, dump: str, source_lines: list[str], equivalents: list[dict]) -> dict:
    counts = {"killed": 0, "survived": 0, "timeout": 0, "equivalent": 0, "not_an_operator": 0, "errors": 0}
    survivors, excluded, errors, not_equivalent = [], [], [], []
    used = [False] * len(equivalents)
    for item, result in _records(dump):
        if not result or result.get("worker_outcome") == "skipped":
            continue  # filtered operator
        mutation = item["mutations"][0]
        line_no, column = mutation["start_pos"]
        mutant = {
            "operator": mutation["operator_name"],
            "line_number": line_no,
            "column": column,
            "source": source_lines[line_no - 1].strip(),
            # NumberReplacer makes two mutants per number, +1 then -1 (cosmic-ray's OFFSETS): the
            # occurrence's parity tells them apart, so an equivalent entry can name one of them
            "offset": (+1 if mutation.get("occurrence", 0) % 2 == 0 else -1)
            if mutation["operator_name"] == "core/NumberReplacer" else None,
        }
        if _is_keyword_only_marker(source_lines[line_no - 1], column, mutant["operator"]):
            # cosmic-ray reads the bare `*` of `def f(a, *, b)` as a multiplication and turns it
            # into `/` (positional-only marker): a signature change, not an operator mutant.
            counts["not_an_operator"] += 1
            continue
        verdict = judge(result)
        if verdict == "error":
            counts["errors"] += 1
            errors.append({**mutant, "output": (result.get("output") or "")[-300:]})
            continue
        match = next((i for i, e in enumerate(equivalents) if _matches(e, mutant)), None)
        if match is not None:
            used[match] = True
            if verdict == "survived":
                counts["equivalent"] += 1
                excluded.append({**mutant, "why": equivalents[match]["why"]})
                continue
            # the tests tell it apart: the entry is wrong, the mutant counts as what it is
            not_equivalent.append({**mutant, "entry": equivalents[match]})
        counts[verdict] += 1
        if verdict == "survived":
            survivors.append(mutant)
    stale = [e for e, hit in zip(equivalents, used) if not hit]
    scored = counts["killed"] + counts["survived"] + counts["timeout"]
    return {
        "module": target.module,
        "tests": list(target.tests),
        **counts,
        "mutants": scored + counts["equivalent"],
        "score": round((scored - counts["survived"]) / scored, 4) if scored else None,
        "survivors": survivors,
        "equivalent_mutants": excluded,
        "stale_equivalent_entries": stale,
        "killed_equivalent_entries": not_equivalent,
        "error_mutants": errors,
    }


def _shown_operator(mutant: dict) -> str:
    offset = mutant.get("offset")
    return mutant["operator"] + (f" ({offset:+d})" if offset else "")


def write_report(results: dict[str, dict]) -> None:
    REPORT_JSON.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    lines = [
        "# Mutation testing of the core modules",
        "",
        "Made by `python scripts/mutation.py` (cosmic-ray, pinned in `requirements-mutation.txt`):",
        "each mutant changes one operator of the module (comparison, arithmetic, number, unary, and/or,",
        "True/False, loop skipped, exception type); the module's own tests run against it.",
        "Score = mutants caught (tests fail, crash or time out) / mutants, equivalent mutants excluded;",
        "a mutant the tests never ran on (a tool error) is not scored and is counted under errors.",
        "`commit`: the commit the module and its tests were at (`+dirty`: with uncommitted changes).",
        "Bit-operation, `is`, and variable-renaming operators are not run (see the script).",
        "",
        "| module | tests | commit | mutants | killed | timeout | survived | equivalent (excluded) | not run (errors) | score |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in sorted(results.items()):
        score = "-" if r["score"] is None else f"{100 * r['score']:.1f}%"
        lines.append(
            f"| {name} (`{r['module']}`) | {', '.join(f'`{t}`' for t in r['tests'])} | {r.get('commit', '?')} | "
            f"{r['mutants']} | {r['killed']} | {r['timeout']} | {r['survived']} | {r['equivalent']} | "
            f"{r.get('errors', 0)} | {score} |"
        )
    for name, r in sorted(results.items()):
        if r["survivors"]:
            lines += ["", f"## {name}: surviving mutants", "", "| line | operator | source |", "|---:|---|---|"]
            lines += [f"| {m['line_number']} | {_shown_operator(m)} | `{m['source']}` |" for m in r["survivors"]]
        if r["equivalent_mutants"]:
            lines += ["", f"## {name}: equivalent mutants (excluded)", "", "| line | operator | source | why |",
                      "|---:|---|---|---|"]
            lines += [f"| {m['line_number']} | {_shown_operator(m)} | `{m['source']}` | {m['why']} |"
                      for m in r["equivalent_mutants"]]
    REPORT_MD.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help=f"modules to test (default: all of {', '.join(TARGETS)})")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--no-report", action="store_true", help="print the results, leave reports/ as it is")
    parser.add_argument("--serve", nargs=2, metavar=("SOCKET", "WORKDIR"), help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--serve" in argv and "--" in argv:  # internal: the warm test process
        cut = argv.index("--")
        sock_path, workdir = argv[argv.index("--serve") + 1: argv.index("--serve") + 3]
        serve_tests(sock_path, workdir, argv[cut + 1:], TIMEOUT_S)
        return 0
    args = parser.parse_args(argv)
    if args.list:
        for name, t in TARGETS.items():
            print(f"{name:12s} {t.module:32s} {' '.join(t.tests)}")
        return 0
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        print(f"error: unknown module {unknown[0]!r}; known: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    names = args.modules or list(TARGETS)
    results = json.loads(REPORT_JSON.read_text(encoding="utf-8")) if REPORT_JSON.exists() else {}
    equivalents = load_equivalents()
    trouble = False
    with tempfile.TemporaryDirectory(prefix="sr-mutation-") as tmp:
        for name in names:
            workdir = Path(tmp) / name
            copy_tree(workdir)
            r = run_target(name, TARGETS[name], workdir, equivalents.get(name, []))
            r["commit"] = code_version(TARGETS[name])
            results[name] = r
            score = "no mutant" if r["score"] is None else f"{r['score']:.1%}"
            print(f"{name}: {score} of {r['mutants'] - r['equivalent']} mutants caught "
                  f"({r['survived']} survived, {r['equivalent']} equivalent excluded, {r['errors']} not run)",
                  flush=True)
            for m in r["survivors"]:
                print(f"  survived: line {m['line_number']} {_shown_operator(m)}: {m['source']}")
            for e in r["stale_equivalent_entries"]:
                print(f"  warning: equivalent entry matches no mutant: {e}", file=sys.stderr)
            for m in r["killed_equivalent_entries"]:
                print(f"  warning: listed as equivalent but the tests kill it (line {m['line_number']} "
                      f"{_shown_operator(m)}): fix scripts/mutation_equivalent.yaml", file=sys.stderr)
            for m in r["error_mutants"]:
                print(f"  error: line {m['line_number']} {_shown_operator(m)} was not tested: {m['output']!r}",
                      file=sys.stderr)
            trouble = trouble or bool(r["errors"] or r["killed_equivalent_entries"])
            shutil.rmtree(workdir, ignore_errors=True)
    if not args.no_report:
        write_report(results)
        print(f"report: {REPORT_MD.relative_to(REPO)}")
    return 1 if trouble else 0


if __name__ == "__main__":
    sys.exit(main())
