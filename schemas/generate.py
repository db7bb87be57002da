"""Generates the committed JSON Schema files from the event models.

`python -m grim_schemas.generate` (or `grim schemas generate`) rewrites them;
`--check` exits 1 when a committed file differs from its model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).resolve().parent / "jsonschema"


def render() -> dict[str, str]:
    """File name -> JSON text for every event type."""
    files = {}
    for type_name, model in sorted(EVENT_TYPES.items()):
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://grim.invalid/schemas/{type_name}.schema.json"
        files[f"{type_name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, stale or no longer generated."""
    expected = render()
    problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text() != text:
            problems.append(f"{name}: differs from its model")
    for path in sorted(directory.glob("*.schema.json")):
        if path.name not in expected:
            problems.append(f"{path.name}: no model generates it")
    return problems


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.schema.json"):
        stale.unlink()
    written = []
    for name, text in render().items():
        (directory / name).write_text(text)
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed files drifted")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for name in write():
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
