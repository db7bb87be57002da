"""Write the dashboards of dashboards.py to deploy/grafana/dashboards/<uid>.json.

    python deploy/grafana/generate_dashboards.py          # write
    python deploy/grafana/generate_dashboards.py --check  # exit 1 when the JSON drifted
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dashboards import DASHBOARDS, dashboard

OUT = HERE / "dashboards"


def render(uid: str) -> str:
    return json.dumps(dashboard(uid), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    drifted = []
    OUT.mkdir(exist_ok=True)
    for uid in DASHBOARDS:
        path = OUT / f"{uid}.json"
        text = render(uid)
        if check:
            if not path.exists() or path.read_text() != text:
                drifted.append(path.name)
        else:
            path.write_text(text)
    if drifted:
        print(f"out of date (run {Path(__file__).name}): {', '.join(drifted)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
