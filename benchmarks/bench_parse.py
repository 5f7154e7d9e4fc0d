"""Benchmark: seconds per megabyte of ``parse_sar`` on ordinary and pathological completions.

Each input is built at two sizes (by default 0.25 MB and 1 MB of characters) and parsed with no
length cap (``max_chars=None``), in lenient and in strict mode. The table gives the best of
``--repeats`` runs as CPU seconds of this process per MB at each size (``time.process_time``,
so other work on a shared machine weighs less than on a wall clock), and the ratio of the two:
a parser that is linear in the length of its input keeps seconds per MB about the same at both
sizes (ratio near 1; a quadratic path would make it about 4 at the default sizes). It also
times one typical completion (about 430 characters, with two steps and two components). Run::

    python benchmarks/bench_parse.py [--sizes 0.25 1] [--repeats 3] [--json]

The numbers depend on the machine and on its load; docs/sar.md gives a run and its machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections.abc import Callable

from hieroaction.sar import Assessment, StepAssessment, parse_sar, render_sar

MB = 1_000_000

# Pieces that make random text look like (broken) completions.
FRAGMENTS = [
    "<recognition>", "</recognition>", "<subactions>", "</subactions>", "<scoring>",
    "</scoring>", "<action>", "</action>", "<score>", "</score>", "</step>", "<step ",
    '<step label="a" start="0" end="1">', '<component name="difficulty">', "</component>",
    "<b>", "</think>", "<", ">", '"', "=", "&", "&lt;", "\n", " ", "3.2", "score: 7", "text",
]


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda n: unit * max(1, n // len(unit))


def _fragments(n: int) -> str:
    rng = random.Random(0)
    out, size = [], 0
    while size < n:
        piece = rng.choice(FRAGMENTS)
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _long_completion(n: int) -> str:
    step = StepAssessment(label="3.5 Soms.Tuck", start=0.84, end=3.24, quality=7.5,
                          analysis="Tight tuck, late opening.")
    unit = len(render_sar(Assessment(steps=[step]))) - len(render_sar(Assessment()))
    steps = [step.model_copy(update={"start": 0.0, "end": 1.0})] * max(1, n // unit)
    return render_sar(Assessment(action="407C", steps=steps, score=86.4))


INPUTS: dict[str, Callable[[int], str]] = {
    "valid completion, many steps": _long_completion,
    "random tag fragments": _fragments,
    "<action> repeated": _repeat("<action>"),
    "<score> repeated": _repeat("<score>"),
    "<scoring><score>1</score></scoring> repeated": _repeat("<scoring><score>1</score></scoring>"),
    "<recognition> repeated": _repeat("<recognition>"),
    "<step (no '>') repeated": _repeat("<step"),
    "<b> (stray markup) repeated": _repeat("<b>"),
    "<b>x (stray markup and text) repeated": _repeat("<b>x"),
    "'<' repeated": _repeat("<"),
    "'&' repeated": _repeat("&"),
    "'score ' repeated (text fallback)": _repeat("score "),
    "one <step> with n/6 attributes": lambda n: "<step " + 'a="1" ' * (n // 6) + ">",
    "<score> of n digits": lambda n: "<score>" + "1" * n + "</score>",
    "<step label=\" then n letters": lambda n: '<step label="' + "x" * n,
}


def best_time(text: str, strict: bool, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        parse_sar(text, strict=strict, max_chars=None)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs=2, default=[0.25, 1.0],
                        help="the two input sizes, in MB of characters")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    small, big = (int(s * MB) for s in args.sizes)

    typical = render_sar(Assessment(
        recognition_reasoning="Inward take-off, tight tuck & 3.5 somersaults.", action="407C",
        steps=[StepAssessment(label="Inward", start=0, end=0.84, quality=8.5, analysis="Good."),
               StepAssessment(label="3.5 Soms.Tuck", start=0.84, end=3.24, analysis="Tight.")],
        scoring_reasoning="DD 3.2 times execution 27 gives 86.4.",
        components={"difficulty": 3.2, "execution": 27}, score=86.4))
    runs = 2000
    start = time.process_time()
    for _ in range(runs):
        parse_sar(typical)
    per_typical = (time.process_time() - start) / runs

    rows = []
    for name, make in INPUTS.items():
        texts = make(small), make(big)
        row = {"input": name}
        for mode, strict in (("lenient", False), ("strict", True)):
            per_mb = [best_time(t, strict, args.repeats) / (len(t) / MB) for t in texts]
            row[mode] = {"s_per_mb": per_mb, "ratio": per_mb[1] / per_mb[0]}
        rows.append(row)
        if not args.json:
            le, st = row["lenient"], row["strict"]
            print(f"{name:46s} lenient {le['s_per_mb'][0]:6.3f} {le['s_per_mb'][1]:6.3f} "
                  f"(x{le['ratio']:.2f})  strict {st['s_per_mb'][0]:6.3f} "
                  f"{st['s_per_mb'][1]:6.3f} (x{st['ratio']:.2f})", flush=True)
    machine = f"{platform.python_implementation()} {platform.python_version()}, " \
              f"{platform.machine()}, {platform.processor() or platform.system()}"
    if args.json:
        print(json.dumps({"sizes_mb": args.sizes, "typical_ms": per_typical * 1e3,
                          "machine": machine, "rows": rows}, indent=2))
    else:
        print(f"typical {len(typical)}-character completion: {per_typical * 1e3:.3f} ms")
        print(f"CPU seconds per MB at {args.sizes[0]} MB and {args.sizes[1]} MB; {machine}")


if __name__ == "__main__":
    main()
