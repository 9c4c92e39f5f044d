"""Optuna's TPE on Branin and Hartmann6, for `npm run bench:tune` to print beside tensile's samplers.

Usage: python3 optuna_tpe.py '{"functions": ["branin", "hartmann6"], "seeds": [0, 1], "trials": 100}'
Prints one JSON object: {"version": "3.1.0", "runs": [{"function", "seed", "best": [...], "suggest_ms": [...]}]}
where best[i] is the best value after trial i + 1 and suggest_ms[i] the time Optuna spent in ask()
plus the suggest calls of trial i.
"""
import json
import math
import sys
import time

import optuna


def branin(x):
    x1, x2 = x
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]


def hartmann6(x):
    total = 0.0
    for i in range(4):
        inner = sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))
        total += ALPHA[i] * math.exp(-inner)
    return -total


FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)]),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6),
}


def run(name, seed, trials):
    function, bounds = FUNCTIONS[name]
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    best = math.inf
    best_curve = []
    suggest_ms = []
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        x = [trial.suggest_float(f"x{d}", low, high) for d, (low, high) in enumerate(bounds)]
        suggest_ms.append((time.perf_counter() - start) * 1000)
        value = function(x)
        study.tell(trial, value)
        best = min(best, value)
        best_curve.append(best)
    return {"function": name, "seed": seed, "best": best_curve, "suggest_ms": suggest_ms}


def main():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = json.loads(sys.argv[1])
    runs = [run(name, seed, config["trials"]) for name in config["functions"] for seed in config["seeds"]]
    print(json.dumps({"version": optuna.__version__, "runs": runs}))


if __name__ == "__main__":
    main()
