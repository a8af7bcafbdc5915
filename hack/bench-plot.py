#!/usr/bin/env python3
"""Time to Ready against N, operator and floor, from `make bench` results (JSON lines), as SVG.

usage: hack/bench-plot.py RESULTS.jsonl [LABEL=RESULTS.jsonl ...] > plot.svg
Each file is one series pair (operator, floor); the last run for each N counts. Log-log axes.
"""
import json
import math
import sys

W, H, L, R, T, B = 640, 400, 70, 170, 30, 50
COLORS = ["#1e40af", "#b91c1c", "#047857", "#7c3aed"]


def load(path):
    runs = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            runs[r["n"]] = r
    return [runs[n] for n in sorted(runs)]


def main(args):
    series = []
    for i, arg in enumerate(args):
        label, _, path = arg.rpartition("=")
        runs = load(path)
        label = label or path
        color = COLORS[i % len(COLORS)]
        series.append((f"operator {label}", color, "", [(r["n"], r["operatorSeconds"]) for r in runs]))
        series.append((f"floor {label}", color, "6,4", [(r["n"], r["floorSeconds"]) for r in runs]))
    points = [p for s in series for p in s[3]]
    xs = [math.log10(n) for n, _ in points]
    ys = [math.log10(max(t, 0.1)) for _, t in points]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs))
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    px = lambda n: L + (math.log10(n) - x0) / (x1 - x0) * (W - L - R)
    py = lambda t: H - B - (math.log10(max(t, 0.1)) - y0) / (y1 - y0) * (H - T - B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="18" font-size="14">Time to Ready against N (log-log)</text>']
    for e in range(x0, x1 + 1):
        x = px(10 ** e)
        out.append(f'<line x1="{x}" y1="{T}" x2="{x}" y2="{H - B}" stroke="#ddd"/>')
        out.append(f'<text x="{x}" y="{H - B + 16}" text-anchor="middle">{10 ** e:,}</text>')
    for e in range(y0, y1 + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{L}" y1="{y}" x2="{W - R}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4}" text-anchor="end">{10 ** e:g} s</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">SubAccounts applied at once (N)</text>')
    for i, (label, color, dash, pts) in enumerate(series):
        path = " ".join(f"{px(n):.1f},{py(t):.1f}" for n, t in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>')
        for n, t in pts:
            out.append(f'<circle cx="{px(n):.1f}" cy="{py(t):.1f}" r="3" fill="{color}"><title>{label}: N={n} {t:.1f} s</title></circle>')
        y = T + 10 + 18 * i
        out.append(f'<line x1="{W - R + 10}" y1="{y}" x2="{W - R + 35}" y2="{y}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{W - R + 40}" y="{y + 4}">{label}</text>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:] or [".cache/bench/results.jsonl"])
