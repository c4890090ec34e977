"""Rewrites a .cu file so that it builds with g++ against the CPU emulation
in emu/ (see emu/cuda_runtime.h):

* launches ``kernel<<<grid, block, smem, stream>>>(`` become
  ``EMU_LAUNCH(kernel, grid, block, smem, stream)(``;
* shared-memory declarations ``__shared__ T name[dims];`` (one name each)
  become references into the running block's own storage, so that several
  emulated blocks can be resident at once, each with its shared memory.

    python emulate_launches.py encode.cu out/encode_emu.cc
"""
import re
import sys

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;]*>)?)<<<(.*?)>>>\(", re.S)
# A type is words (each maybe with template arguments), then one name.
SHARED = re.compile(
    r"__shared__\s+((?:[A-Za-z_][\w:]*(?:<[^<>;]*>)?\s+)+?)"
    r"([A-Za-z_]\w*)\s*((?:\[[^\];]+\])*)\s*;")


def _shared(match: re.Match) -> str:
    ctype, name, dims = match.group(1).strip(), match.group(2), match.group(3)
    return (f"static char emu_tag_{name}; "
            f"auto& {name} = ::emu::Shared<{ctype}{dims}>(&emu_tag_{name});")


def rewrite(text: str) -> str:
    """The emulation-ready source; raises ValueError on a __shared__
    declaration it cannot rewrite (several names, an initializer)."""
    text = LAUNCH.sub(lambda m: f"EMU_LAUNCH({m.group(1)}, {m.group(2)})(",
                      text)
    text = SHARED.sub(_shared, text)
    left = [line for line in text.splitlines() if "__shared__" in line
            and not line.lstrip().startswith("//")]
    if left:
        raise ValueError("cannot emulate these __shared__ declarations "
                         f"(one name per declaration, no initializer): {left}")
    return text


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        out = rewrite(f.read())
    with open(dst, "w") as f:
        f.write(out)
