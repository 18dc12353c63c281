"""Fails when a module of fiscobridge imports a package of its own layer or of a layer above it.

The layers, lowest first, are docs/architecture.md's: a package may import only packages of
lower layers (and itself). Run by `make lint`; `python scripts/check_layers.py [ROOT]`.
"""

import ast
import sys
from pathlib import Path

LAYERS = [
    {"core"},  # no business rules: errors, clock, crypto, ids, text
    {"tasks"},  # the task queue: enqueueing, retries, the periodic schedule, the worker
    {"audit"},
    {"accounts"},
    {"subscriptions"},
    {"notifications"},
    {"webhooks"},  # partners' webhook endpoints and deliveries: told by keys, e-mail when failing
    {"keys"},
    {"pos", "integrations"},
    {"seats", "leases"},  # seats used / total / available; offline leases (signed entitlements)
    {"web", "billing"},
    {"api", "portal", "partners", "staff"},  # presentation: never one another
    {"demo", "prune"},  # demo data; the retention of every growing table
    {"jobs"},  # the periodic jobs  # demo data, made through the services; the periodic jobs
    {"settings", "urls", "wsgi", "cli", "gunicorn_conf"},  # entry points: may use anything
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}


def imported_packages(path: Path):
    """(line, package) for each `fiscobridge.<package>` this file imports, wherever it does."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "fiscobridge" and len(parts) > 1:
                yield node.lineno, parts[1]


def check(root: Path) -> list[str]:
    problems = []
    package_root = root / "fiscobridge"
    for path in sorted(package_root.rglob("*.py")):
        relative = path.relative_to(package_root)
        if relative.parts == ("__init__.py",):
            continue
        own = relative.parts[0].removesuffix(".py")
        if own not in LAYER_OF:
            problems.append(f"{path}: package '{own}' has no layer in scripts/check_layers.py")
            continue
        for line, package in imported_packages(path):
            if package == own:
                continue
            if package not in LAYER_OF:
                problems.append(f"{path}:{line}: imports 'fiscobridge.{package}', which has no layer")
            elif LAYER_OF[package] >= LAYER_OF[own]:
                problems.append(f"{path}:{line}: '{own}' may not import 'fiscobridge.{package}' (same or higher layer)")
    return problems


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} import(s) against the layers (docs/architecture.md)", file=sys.stderr)
        return 1
    print("layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
