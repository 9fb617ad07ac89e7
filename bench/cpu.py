"""The CPU a figure was taken on: every benchmark prints it beside its figures (CPUs differ up to ~9x here)."""

import os
import subprocess
from pathlib import Path


def describe() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")), "?")
    flags = set(Path("/proc/cpuinfo").read_text().split())
    return (f"{model}, {os.cpu_count()} cores; AVX2: {'yes' if 'avx2' in flags else 'no'}; "
            f"AVX-512: {'yes' if 'avx512f' in flags else 'no'}; VNNI: {'yes' if {'avx512_vnni', 'avx_vnni'} & flags else 'no'}; "
            f"native bfloat16: {'yes' if {'avx512_bf16', 'amx_bf16'} & flags else 'no'}")
