"""Training speed of CascadedNet: windows per second of forward, backward and Adam step, as `stemforge train`
runs them (0.8/0.2 L1 on mask and aux outputs), on this machine's CPU (or a GPU with --device cuda).

    .venv/bin/python benchmarks/train_throughput.py                   # 2048/32/128 and 1024/16/64, 256 frames
    .venv/bin/python benchmarks/train_throughput.py --steps 20 --batch-size 4
"""

import argparse
import os
import platform
import time

import torch
from torch import nn

from stemforge.model import CascadedNet, resolve_device


def windows_per_second(n_fft: int, nout: int, nout_lstm: int, cropsize: int, batch_size: int, steps: int,
                       device: torch.device) -> float:
    """Mean windows/s over ``steps`` training steps after one warm-up step."""
    torch.manual_seed(0)
    net = CascadedNet(n_fft, nout, nout_lstm).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch_size, 2, n_fft // 2 + 1, cropsize, device=device)
    y = x * torch.rand_like(x)
    criterion = nn.L1Loss()

    def step() -> None:
        mask, aux = net(x)
        loss = 0.8 * criterion(mask * x, y) + 0.2 * criterion(aux * x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    """Print a markdown table of windows/s per model size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--cropsize", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}, batch {args.batch_size}, {args.cropsize} frames")
    print("| model (n_fft/nout/nout_lstm) | windows/s | seconds of audio/s at hop n_fft/2 |")
    print("|---|---:|---:|")
    for n_fft, nout, lstm in ((2048, 32, 128), (1024, 16, 64), (512, 8, 16)):
        speed = windows_per_second(n_fft, nout, lstm, args.cropsize, args.batch_size, args.steps, device)
        audio = speed * args.cropsize * (n_fft // 2) / 44100
        print(f"| {n_fft}/{nout}/{lstm} | {speed:.2f} | {audio:.1f} |")


if __name__ == "__main__":
    main()
