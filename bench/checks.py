"""Sanity checks printed after the tables: ``python -m bench.checks [--samples N]`` (one JSON line).

Imports nothing heavy at the top: the harness reads RESULT_PREFIX without loading numpy.

float16 input (issue 10): a float64 DeepConvNet converts float16 images to float64 once,
at its first layer, so evaluating float16 images must cost about what float64 images
cost (a network dragged into float16 arithmetic, or converting at every layer, would
take several times as long). Timed in alternation, best of a few; printed, not judged.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

RESULT_PREFIX = "BENCH-CHECK "


def float16_evaluation(samples: int = 1000, repeats: int = 3) -> dict[str, Any]:
    """Seconds a float64 DeepConvNet takes to evaluate `samples` images given as float64 and as float16."""
    import numpy as np  # here: the harness imports this module without loading a BLAS

    from dlscratch import DeepConvNet

    network = DeepConvNet(seed=0)
    rng = np.random.default_rng(0)
    images = {"float64": rng.random((samples, 1, 28, 28))}
    images["float16"] = images["float64"].astype(np.float16)
    labels = rng.integers(0, 10, samples)
    best = {name: float("inf") for name in images}
    network.accuracy(images["float64"][:100], labels[:100])  # warm up
    for _ in range(repeats):
        for name, x in images.items():
            started = time.perf_counter()
            network.accuracy(x, labels)
            best[name] = min(best[name], time.perf_counter() - started)
    return {
        "samples": samples,
        "float64_s": best["float64"],
        "float16_s": best["float16"],
        "ratio": best["float16"] / best["float64"],
    }


def format_float16(result: dict[str, Any], threads: int) -> str:
    float64_ms, float16_ms = result["float64_s"] * 1e3, result["float16_s"] * 1e3
    return (
        f"== check at {threads} thread(s): a float64 DeepConvNet evaluating {result['samples']} images: "
        f"float64 input {float64_ms:.0f} ms, float16 input {float16_ms:.0f} ms, ratio {result['ratio']:.2f} "
        "(about 1 expected: the input is converted once, at the first layer)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.checks")
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    print(RESULT_PREFIX + json.dumps(float16_evaluation(args.samples)), flush=True)


if __name__ == "__main__":
    main()
