#!/usr/bin/python3
"""PyTorch side of `npm run bench:conv`: the same convolutions, timed with torch.nn.functional.conv2d
(forward) and autograd (input gradient with only x requiring grad, weight gradient with only the
weight requiring grad), on the CPU with N threads.

Usage: conv_bench.py THREADS REPEATS WARMUP [median|min] < geometries.json
geometries.json: [{"name", "batch", "cin", "cout", "size", "kernel", "stride", "padding"}, ...]
Prints one JSON object: {"threads", "results": [{"name", "forward", "grad_input", "grad_weight"}]}
with the median (or minimum) seconds of each.
"""
import json, sys, time
import torch
import torch.nn.functional as F

STATISTIC = sys.argv[4] if len(sys.argv) > 4 else "median"

def median_seconds(step, repeats, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
    times.sort()
    return times[0] if STATISTIC == "min" else times[len(times) // 2]

def main():
    threads, repeats, warmup = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    results = []
    for g in json.load(sys.stdin):
        x = torch.randn(g["batch"], g["cin"], g["size"], g["size"])
        w = torch.randn(g["cout"], g["cin"], g["kernel"], g["kernel"]) * 0.1
        conv = lambda a, b: F.conv2d(a, b, stride=g["stride"], padding=g["padding"])
        with torch.no_grad():
            forward = median_seconds(lambda: conv(x, w), repeats, warmup)
            grad_out = torch.randn_like(conv(x, w))
        # Input gradient: autograd runs convolution_backward for the input only.
        xi = x.clone().requires_grad_(True)
        yi = conv(xi, w)
        def grad_input():
            xi.grad = None
            yi.backward(grad_out, retain_graph=True)
        # Weight gradient: only the weight requires grad.
        wi = w.clone().requires_grad_(True)
        yw = conv(x, wi)
        def grad_weight():
            wi.grad = None
            yw.backward(grad_out, retain_graph=True)
        results.append({
            "name": g["name"],
            "forward": forward,
            "grad_input": median_seconds(grad_input, repeats, warmup),
            "grad_weight": median_seconds(grad_weight, repeats, warmup),
        })
    print(json.dumps({"threads": threads, "results": results}))

if __name__ == "__main__":
    main()
