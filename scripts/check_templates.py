"""Template lines stay readable: none longer than MAX_LINE characters.

djlint (`make lint`) checks the templates' syntax, including Django tags and `{# #}` comments that
span lines and so show as text (its rule D058); it has no rule for line length, which this adds.

Usage: python scripts/check_templates.py [DIR_OR_FILE ...]   (default: every template directory)
Exit status: 0 when clean, 1 when a line is too long, 2 when a path does not exist.
"""

import sys
from pathlib import Path

MAX_LINE = 120
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = [ROOT / "fiscobridge" / "templates", ROOT / "fiscobridge" / "notifications" / "templates"]
SUFFIXES = {".html", ".txt"}


def templates(paths: list[Path]):
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
        else:
            yield path


def long_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        f"{path}:{number}: {len(line)} characters (at most {MAX_LINE})"
        for number, line in enumerate(lines, start=1)
        if len(line) > MAX_LINE
    ]


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or DEFAULT_PATHS
    missing = [path for path in paths if not path.exists()]
    if missing:
        print(f"no such file or directory: {missing[0]}", file=sys.stderr)
        return 2
    problems = [problem for path in templates(paths) for problem in long_lines(path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
