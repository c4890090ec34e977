"""Rewrites CUDA launches `kernel<<<grid, block, smem, stream>>>(` into
`EMU_LAUNCH(kernel, grid, block, smem, stream)(` so that a .cu file builds
with g++ against the CPU emulation in emu/ (see emu/cuda_runtime.h).

    python emulate_launches.py encode.cu out/encode_emu.cc
"""
import re
import sys

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;]*>)?)<<<(.*?)>>>\(", re.S)


def rewrite(text: str) -> str:
    return LAUNCH.sub(lambda m: f"EMU_LAUNCH({m.group(1)}, {m.group(2)})(",
                      text)


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        text = rewrite(f.read())
    with open(dst, "w") as f:
        f.write(text)
