#!/usr/bin/env python3
"""Collects criterion medians into a Markdown table and draws docs/benchmarks-es256.svg.

Usage (from the repository root, after the benches ran):
    python3 benches/report.py            # prints the tables, writes the SVG

Reads target/criterion/**/new/estimates.json and benches/peer/target/criterion/**.
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DIRS = [ROOT / "target" / "criterion", ROOT / "benches" / "peer" / "target" / "criterion"]


def medians():
    out = {}
    for base in DIRS:
        if not base.is_dir():
            continue
        for est in base.glob("**/new/estimates.json"):
            bench = json.loads((est.parent / "benchmark.json").read_text())
            name = bench.get("full_id") or bench.get("title")
            data = json.loads(est.read_text())
            out[name] = data["median"]["point_estimate"]
    return out


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def svg(rows, path, title):
    width, left, bar_h, gap, top = 760, 330, 22, 8, 40
    longest = max(v for _, v in rows)
    height = top + len(rows) * (bar_h + gap) + 20
    scale = (width - left - 90) / longest
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="24" font-size="15" font-weight="bold">{title}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar_h + gap)
        color = "#c0504d" if "webauthn-rs" in label else "#4f81bd"
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{label}</text>')
        parts.append(
            f'<rect x="{left}" y="{y}" width="{max(value * scale, 1):.1f}" '
            f'height="{bar_h}" fill="{color}"/>'
        )
        parts.append(f'<text x="{left + value * scale + 6:.1f}" y="{y + 16}">{fmt(value)}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main():
    m = medians()
    if not m:
        sys.exit("no criterion results found; run the benches first")
    for name in sorted(m):
        print(f"| `{name}` | {fmt(m[name])} |")
    chart = [
        ("raw ring P-256 verify", "es256/raw_verify/ring"),
        ("keyward complete (ring)", "es256/complete_json/ring"),
        ("keyward complete (ring), peer run", "peer_es256_assertion/keyward_ring"),
        ("webauthn-rs-core complete", "peer_es256_assertion/webauthn-rs-core"),
        ("raw p256 verify", "es256/raw_verify/p256"),
        ("keyward complete (p256)", "es256/complete_json/p256"),
    ]
    rows = [(label, m[key]) for label, key in chart if key in m]
    if rows:
        svg(rows, ROOT / "docs" / "benchmarks-es256.svg",
            "ES256 assertion verification, median per assertion (lower is better)")


if __name__ == "__main__":
    main()
