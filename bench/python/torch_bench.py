#!/usr/bin/python3
"""PyTorch side of `npm run bench`: the same workloads as bench/main.ts, on the CPU with N threads.

Usage: torch_bench.py WORKLOAD STEPS WARMUP THREADS
Prints one JSON object: {"workload", "samples_per_s", "step_seconds": [...], "blas"}.
"""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

def seed_cnn():
    layers, cin = [], 1
    for i, co in enumerate([32, 32, 64, 64]):
        layers += [nn.Conv2d(cin, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU()]
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
        cin = co
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)

def blas_in_use():
    """Which BLAS torch's matmul went through: Debian's torch links the system libblas.so.3, which is
    the slow reference BLAS unless libopenblas0 is installed. Read after a matmul has run."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.split()[-1]}
    openblas = [p for p in paths if "openblas" in p]
    if openblas:
        import ctypes
        lib = ctypes.CDLL(openblas[0])
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return "OpenBLAS " + lib.openblas_get_corename().decode()
    return "reference BLAS (" + ", ".join(sorted(paths)) + ")" if paths else "unknown"

def main():
    workload, steps, warmup, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if workload == "gemm":
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        batch = 1
        def step():
            torch.mm(a, b)
    elif workload in ("seedcnn-train", "mlp-train"):
        if workload == "seedcnn-train":
            model, batch, x = seed_cnn(), 64, torch.randn(64, 1, 28, 28)
        else:
            model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
            batch, x = 128, torch.randn(128, 784)
        y = torch.randint(0, 10, (batch,))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    elif workload == "seedcnn-infer":
        model, batch = seed_cnn().eval(), 256
        x = torch.randn(batch, 1, 28, 28)
        def step():
            with torch.no_grad():
                model(x)
    else:
        raise SystemExit(f"unknown workload {workload}")
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
    times.sort()
    median = times[len(times) // 2]
    torch.mm(torch.ones(8, 8), torch.ones(8, 8))
    print(json.dumps({"workload": workload, "samples_per_s": batch / median, "step_seconds": times, "blas": blas_in_use()}))

if __name__ == "__main__":
    main()
