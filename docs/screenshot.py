"""Remakes docs/report.png, the README's picture of `stemforge report`: the top of the report of `make demo`'s
run, rendered by headless Chromium (Debian's `chromium`, driven by playwright).

    make demo && .venv/bin/python docs/screenshot.py demo_output/report.html
"""

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Screenshot the first ``--height`` CSS pixels of a report at 1100 px wide."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a report written by `stemforge report` or `make demo`")
    parser.add_argument("--output", type=Path, default=HERE / "report.png")
    parser.add_argument("--height", type=int, default=1900)
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": args.height})
        page.goto(args.report.resolve().as_uri())
        page.screenshot(path=str(args.output), clip={"x": 0, "y": 0, "width": 1100, "height": args.height})
        browser.close()
    print(args.output)


if __name__ == "__main__":
    main()
