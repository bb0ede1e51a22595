#!/usr/bin/env python3
"""Save the intersphinx inventories the docs link to, for offline builds.

    python tools/fetch_intersphinx.py

Downloads ``objects.inv`` of Python, NumPy, SciPy and Dask (the sites named
in ``docs/conf.py``) into ``docs/_intersphinx/<name>.inv``, which
``docs/conf.py`` prefers to the web.  The folder is not in git: the files
belong to those projects and go stale.  Without them, and without web
access, the site still builds; names of those projects are then not links.
"""

import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    sites = {}
    for line in (ROOT / "docs" / "conf.py").read_text().splitlines():
        line = line.strip()
        if line.startswith('"') and '": "https://' in line:
            name, url = (part.strip().strip('",') for part in line.split(":", 1))
            sites[name] = url
    out = ROOT / "docs" / "_intersphinx"
    out.mkdir(exist_ok=True)
    failed = 0
    for name, url in sites.items():
        try:
            with urllib.request.urlopen(url + "objects.inv", timeout=30) as response:
                data = response.read()
        except OSError as exc:
            print(f"{name}: {url}objects.inv: {exc}", file=sys.stderr)
            failed += 1
            continue
        (out / f"{name}.inv").write_bytes(data)
        print(f"{name}: {len(data)} bytes -> {out / (name + '.inv')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
