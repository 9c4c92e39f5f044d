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

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))

def resnet18(classes, stem):
    """torchvision's resnet18 (basic blocks 2-2-2-2, widths 64-512; torchvision is not installed
    with Debian's torch); stem 'small' is tensile's: a 3x3 stride-1 conv1 and no max-pool."""
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False) if stem == "small" else nn.Conv2d(3, 64, 7, 2, 3, bias=False),
              nn.BatchNorm2d(64), nn.ReLU()]
    if stem != "small":
        layers.append(nn.MaxPool2d(3, 2, 1))
    cin = 64
    for stage, width in enumerate([64, 128, 256, 512]):
        for index in range(2):
            layers.append(BasicBlock(cin, width, 2 if index == 0 and stage > 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
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
    elif workload in ("seedcnn-train", "resnet18-train", "mlp-train"):
        if workload == "seedcnn-train":
            model, batch, x = seed_cnn(), 64, torch.randn(64, 1, 28, 28)
        elif workload == "resnet18-train":
            model, batch, x = resnet18(10, "small"), 32, torch.randn(32, 3, 32, 32)
        else:
            model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
            batch, x = 128, torch.randn(128, 784)
        y = torch.randint(0, 10, (batch,))
        if workload == "resnet18-train":
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()
        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    elif workload in ("seedcnn-infer", "resnet18-infer"):
        if workload == "seedcnn-infer":
            model, batch = seed_cnn().eval(), 256
            x = torch.randn(batch, 1, 28, 28)
        else:
            model, batch = resnet18(1000, "imagenet").eval(), 8
            x = torch.randn(batch, 3, 224, 224)
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
