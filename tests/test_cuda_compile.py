"""The CUDA sources compile (sm_80 and sm_90) wherever nvcc exists, and the
GPU kernels agree with the CPU core bit for bit when run on the CPU.

No GPU is needed: the .cu files are compiled with nvcc, and also run under a
fiber-based CPU emulation of CUDA (custom_ops/cuda/harness/emu), which checks
their logic but not their behaviour under real concurrency or their speed.
That is the job of custom_ops/cuda/harness on a GPU (see its README).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CUDA = ROOT / "custom_ops" / "cuda"
CORE = ROOT / "custom_ops" / "core"
GENCODE = ["-gencode", "arch=compute_80,code=sm_80",
           "-gencode", "arch=compute_90,code=sm_90"]


def _nvcc():
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found: CUDA sources are not compile-checked")
    return nvcc


def _cuda_include(nvcc):
    """The toolkit's include folder (nvcc may be a wrapper script)."""
    out = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", "/dev/null"],
                         capture_output=True, text=True)
    for line in out.stderr.splitlines():
        if "INCLUDES=" in line:
            for part in line.split('"'):
                if part.startswith("-I") and (
                        Path(part[2:]) / "cuda_runtime.h").is_file():
                    return part[2:]
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home and (Path(home) / "include" / "cuda_runtime.h").is_file():
            return str(Path(home) / "include")
    pytest.skip("CUDA headers not found")


def _run_all(cmds):
    """Runs the commands two at a time (this machine has 2 cores)."""
    failures = []
    pending = list(cmds)
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = [(c, subprocess.Popen(c, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
                 for c in batch]
        for cmd, proc in procs:
            _, err = proc.communicate(timeout=600)
            if proc.returncode != 0:
                failures.append(f"{' '.join(cmd)}\n{err[-4000:]}")
    return failures


@pytest.fixture(scope="module")
def core_objects(tmp_path_factory):
    """The CPU core compiled once (the reference for both CPU-side checks)."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    out = tmp_path_factory.mktemp("core")
    objs = [str(out / f"core_{name}.o") for name in ("encode", "vote")]
    failures = _run_all(
        [[cxx, "-std=c++17", "-O2", "-c", str(CORE / f"{name}.cc"), "-o", obj]
         for name, obj in zip(("encode", "vote"), objs)])
    assert not failures, "\n\n".join(failures)
    return cxx, objs


def test_cuda_sources_compile_for_sm80_and_sm90(tmp_path):
    nvcc = _nvcc()
    sources = [CUDA / "encode.cu", CUDA / "vote.cu",
               CUDA / "harness" / "harness.cu"]
    cmds = [[nvcc, "-std=c++17", "-O3", "-Xcompiler", "-fPIC", *GENCODE,
             "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
            for src in sources]
    failures = _run_all(cmds)
    assert not failures, "\n\n".join(failures)
    for src in sources:
        assert (tmp_path / (src.stem + ".o")).stat().st_size > 0


def test_tf_gpu_kernels_compile_with_google_cuda(tmp_path):
    """The TF GPU wrapper compiles as in a CUDA build of TensorFlow
    (GOOGLE_CUDA=1) against the installed TF headers, and to nothing
    without it."""
    nvcc = _nvcc()
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    import tensorflow as tf

    src = ROOT / "custom_ops" / "tf" / "sparse_sign_kernels_gpu.cc"
    base = [cxx, "-std=c++17", "-O1", "-fPIC", "-w",
            *tf.sysconfig.get_compile_flags(), "-c", str(src)]
    with_cuda = base + ["-DGOOGLE_CUDA=1", f"-I{_cuda_include(nvcc)}",
                        "-o", str(tmp_path / "gpu.o")]
    without = base + ["-o", str(tmp_path / "cpu.o")]
    failures = _run_all([with_cuda, without])
    assert not failures, "\n\n".join(failures)
    symbols = subprocess.run(["nm", "-C", str(tmp_path / "gpu.o")],
                             capture_output=True, text=True).stdout
    assert "sparsesign::gpu::Encode" in symbols
    assert "sparsesign::gpu::MajorityVote" in symbols
    empty = subprocess.run(["nm", str(tmp_path / "cpu.o")],
                           capture_output=True, text=True).stdout
    assert "sparsesign" not in empty


def test_selection_plan_matches_cpu_core(tmp_path, core_objects):
    """Runs the GPU encoder's pass sequence serially (select_plan.h) against
    the CPU core, all four formats and many input families."""
    cxx, objs = core_objects
    exe = tmp_path / "plan_selftest"
    build = subprocess.run(
        [cxx, "-std=c++17", "-O2", "-Wall", "-Werror",
         str(CUDA / "harness" / "plan_selftest.cc"), *objs, "-o", str(exe)],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:] + run.stdout[-2000:]
    assert " 0 failures" in run.stdout


@pytest.fixture(scope="module")
def emulated_kernels(tmp_path_factory, core_objects):
    """encode.cu and vote.cu compiled with g++ against the fiber-based CUDA
    emulation in custom_ops/cuda/harness/emu (launches rewritten)."""
    cxx, core = core_objects
    sys.path.insert(0, str(CUDA / "harness"))
    try:
        from emulate_launches import rewrite
    finally:
        sys.path.pop(0)
    out = tmp_path_factory.mktemp("emu")
    flags = ["-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas",
             f"-I{CUDA / 'harness' / 'emu'}", f"-I{CUDA}",
             f"-I{CUDA / 'harness'}"]
    cmds, objs = [], []
    for src in (CUDA / "encode.cu", CUDA / "vote.cu",
                CUDA / "harness" / "harness.cu"):
        cc = out / f"{src.stem}_emu.cc"
        cc.write_text(rewrite(src.read_text()))
        objs.append(str(out / f"{src.stem}_emu.o"))
        cmds.append([cxx, *flags, "-c", str(cc), "-o", objs[-1]])
    failures = _run_all(cmds)
    assert not failures, "\n\n".join(failures)
    kernels, harness = objs[:2], objs[2]
    return cxx, flags, [*core, *kernels], harness, out


def test_gpu_kernels_match_cpu_core_under_cpu_emulation(emulated_kernels):
    """Runs the kernels themselves -- block scans, warp look-back, candidate
    buffer, padding, residual, vote validation and tallies -- against the
    CPU core, aligned and misaligned inputs. Blocks run one at a time, so
    races between blocks stay untested."""
    cxx, flags, objs, _, out = emulated_kernels
    exe = out / "emulated_selftest"
    link = subprocess.run(
        [cxx, *flags, str(CUDA / "harness" / "emulated_selftest.cc"), *objs,
         "-o", str(exe)], capture_output=True, text=True, timeout=600)
    assert link.returncode == 0, link.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:] + run.stdout[-2000:]
    assert " 0 failures" in run.stdout


def test_harness_check_mode_passes_under_cpu_emulation(emulated_kernels):
    """The GPU harness's own checking code (input generation on the device,
    comparisons, error-text matching) run under the emulation at tiny N, so
    the GPU run does not fail on a harness bug."""
    cxx, flags, objs, harness, out = emulated_kernels
    exe = out / "harness_emu"
    link = subprocess.run([cxx, *flags, harness, *objs, "-o", str(exe)],
                          capture_output=True, text=True, timeout=600)
    assert link.returncode == 0, link.stderr[-4000:]
    run = subprocess.run([str(exe), "--check-only", "--max-n", "5", "--out",
                          str(out)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:] + run.stdout[-2000:]
    assert ", 0 failures" in run.stdout
    assert (out / "check.md").is_file()


def test_cpu_only_build_ignores_cuda_sources():
    """Without a CUDA TensorFlow the GPU sources stay out of the build and
    its cache key, so the CPU build is exactly what it was."""
    import tensorflow as tf

    from tf_sparsesign.ops import _build

    src = _build.source_dir()
    for rel in (_build.CUDA_SOURCES + _build.CUDA_TF_SOURCES
                + _build.CUDA_HEADERS):
        assert (src / rel).is_file(), rel
    if not tf.test.is_built_with_cuda():
        assert _build._cuda_config() is None
    cpu_key = _build.build_key(src, [], [], "x", "g++")
    assert _build.build_key(src, [], [], "x", "g++", None) == cpu_key
    fake = {"nvcc": "nvcc", "gencode": ["-gencode=arch=compute_90,code=sm_90"],
            "include": "", "lib": ""}
    assert _build.build_key(src, [], [], "x", "g++", fake) != cpu_key


def test_cuda_config_honours_disable_switch(monkeypatch):
    from tf_sparsesign.ops import _build

    monkeypatch.setenv("TF_SPARSESIGN_DISABLE_CUDA", "1")
    assert _build._cuda_config() is None
