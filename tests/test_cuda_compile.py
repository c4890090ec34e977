"""The CUDA sources compile (sm_75 and sm_90) wherever nvcc exists, and the
GPU kernels agree with the CPU core bit for bit when run on the CPU.

No GPU is needed: the .cu files are compiled with nvcc, and also run under a
fiber-based CPU emulation of CUDA (custom_ops/cuda/harness/emu) with the
blocks in several orders and several blocks resident at once, which checks
their logic (including blocks that wait on other blocks) but not the GPU's
memory model or speed. That is the job of custom_ops/cuda/harness on a GPU
(benchmarks/gpu/run_gpu.sh).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CUDA = ROOT / "custom_ops" / "cuda"
CORE = ROOT / "custom_ops" / "core"
# sm_75: the oldest arch CUDA 13 supports (T4); sm_90: H100/H200.
GENCODE = ["-gencode", "arch=compute_75,code=sm_75",
           "-gencode", "arch=compute_90,code=sm_90"]
KERNEL_SOURCES = ("encode.cu", "vote.cu", "driver.cu")
#: (EMU_BLOCK_ORDER, EMU_RESIDENT_BLOCKS, EMU_SEED): index order, reversed,
#: shuffled, and shuffled with 4 blocks resident (blocks interleave at
#: barriers, so the look-back really waits on unfinished tiles).
BLOCK_ORDERS = [("forward", 1, 1), ("reverse", 1, 1), ("shuffle", 1, 5),
                ("shuffle", 4, 9)]


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


def _run_all(cmds, envs=None):
    """Runs the commands two at a time (this machine has 2 cores), each
    with its extra environment; returns (failures, every command's output
    in order)."""
    failures, outputs = [], []
    pending = list(zip(cmds, envs or [None] * len(cmds)))
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = [(c, subprocess.Popen(
            c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=None if e is None else {**os.environ, **e}))
                 for c, e in batch]
        for cmd, proc in procs:
            out, err = proc.communicate(timeout=600)
            outputs.append(out + err)
            if proc.returncode != 0:
                failures.append(f"{' '.join(cmd)}\n{err[-4000:]}"
                                f"{out[-2000:]}")
    return failures, outputs


@pytest.fixture(scope="module")
def core_objects(tmp_path_factory):
    """The CPU core compiled once (the reference for both CPU-side checks)."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    out = tmp_path_factory.mktemp("core")
    objs = [str(out / f"core_{name}.o") for name in ("encode", "vote")]
    failures, outputs = _run_all(
        [[cxx, "-std=c++17", "-O2", "-c", str(CORE / f"{name}.cc"), "-o", obj]
         for name, obj in zip(("encode", "vote"), objs)])
    assert not failures, "\n\n".join(failures)
    return cxx, objs


def test_cuda_sources_compile_for_sm75_and_sm90(tmp_path):
    """Compiles every .cu file (kernels and the standalone harness) for
    sm_75 and sm_90; ptxas' report shows the compaction kernel within its
    __launch_bounds__(256, 4) budget of 64 registers."""
    nvcc = _nvcc()
    sources = [CUDA / name for name in KERNEL_SOURCES] + [
        CUDA / "harness" / "harness.cu"]
    cmds = [[nvcc, "-std=c++17", "-O3", "-Xcompiler", "-fPIC", *GENCODE,
             *(["-Xptxas", "-v"] if src.name == "encode.cu" else []),
             "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
            for src in sources]
    failures, outputs = _run_all(cmds)
    assert not failures, "\n\n".join(failures)
    for src in sources:
        assert (tmp_path / (src.stem + ".o")).stat().st_size > 0
    report = outputs[0]
    compact = re.findall(r"Compiling entry function '\w*CompactKernel\w*' "
                         r"for '(sm_\d+)'.*?Used (\d+) registers", report,
                         re.S)
    assert {arch for arch, _ in compact} == {"sm_75", "sm_90"}, report[-3000:]
    assert len(compact) == 8, compact  # 4 float formats x 2 archs
    assert all(int(regs) <= 64 for _, regs in compact), compact


def test_library_code_never_waits_for_the_gpu():
    """No stream or device synchronization in the launchers or the TF GPU
    kernels: they finish in the stream's event callback (only the harness
    and the tests wait)."""
    code = [CUDA / name for name in KERNEL_SOURCES] + [
        CUDA / "sparse_sign_cuda.h", CUDA / "device_util.cuh",
        CUDA / "select_plan.h", ROOT / "custom_ops" / "tf" /
        "sparse_sign_kernels_gpu.cc"]
    for path in code:
        body = "\n".join(line for line in path.read_text().splitlines()
                         if not line.lstrip().startswith("//"))
        for call in ("cudaStreamSynchronize", "cudaDeviceSynchronize",
                     "cudaMemcpy(", "cudaEventSynchronize"):
            assert call not in body, f"{path.name} calls {call}"


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
    failures, outputs = _run_all([with_cuda, without])
    assert not failures, "\n\n".join(failures)
    symbols = subprocess.run(["nm", "-C", str(tmp_path / "gpu.o")],
                             capture_output=True, text=True).stdout
    assert "sparsesign::gpu::EncodeAsync" in symbols
    assert "sparsesign::gpu::MajorityVoteAsync" in symbols
    assert "sparsesign::gpu::CheckDriver" in symbols
    # Finishes in TF's event callback, never by waiting on the stream.
    assert "EventMgr::ThenExecute" in symbols
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
    """The .cu files compiled with g++ against the fiber-based CUDA
    emulation in custom_ops/cuda/harness/emu (launches and __shared__
    declarations rewritten)."""
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
    for src in [CUDA / name for name in KERNEL_SOURCES] + [
            CUDA / "harness" / "harness.cu"]:
        cc = out / f"{src.stem}_emu.cc"
        cc.write_text(rewrite(src.read_text()))
        objs.append(str(out / f"{src.stem}_emu.o"))
        cmds.append([cxx, *flags, "-c", str(cc), "-o", objs[-1]])
    failures, outputs = _run_all(cmds)
    assert not failures, "\n\n".join(failures)
    kernels, harness = objs[:-1], objs[-1]
    return cxx, flags, [*core, *kernels], harness, out


def test_emulation_rewrite_refuses_what_it_cannot_emulate():
    sys.path.insert(0, str(CUDA / "harness"))
    try:
        from emulate_launches import rewrite
    finally:
        sys.path.pop(0)
    text = rewrite("__global__ void K() {\n  __shared__ float a[4][8];\n"
                   "  __shared__ unsigned long long b;\n  K<<<2, 32>>>();\n}")
    assert "::emu::Shared<float[4][8]>(&emu_tag_a)" in text
    assert "::emu::Shared<unsigned long long>(&emu_tag_b)" in text
    assert "EMU_LAUNCH(K, 2, 32)();" in text
    with pytest.raises(ValueError, match="one name per declaration"):
        rewrite("__shared__ int a, b;")


def test_gpu_kernels_match_cpu_core_in_every_block_order(emulated_kernels):
    """Runs the kernels themselves -- block scans, warp look-back, candidate
    buffer, padding, residual, vote validation, the row-ordered weighted
    tally -- against the CPU core, aligned and misaligned inputs, with the
    blocks started in index order, reversed, shuffled, and shuffled with 4
    blocks resident at once; plus the launchers' contracts (workspace
    checks, a driver older than the toolkit refused)."""
    cxx, flags, objs, _, out = emulated_kernels
    exe = out / "emulated_selftest"
    link = subprocess.run(
        [cxx, *flags, str(CUDA / "harness" / "emulated_selftest.cc"), *objs,
         "-o", str(exe)], capture_output=True, text=True, timeout=600)
    assert link.returncode == 0, link.stderr[-4000:]
    envs = [{"EMU_BLOCK_ORDER": order, "EMU_RESIDENT_BLOCKS": str(resident),
             "EMU_SEED": str(seed)} for order, resident, seed in BLOCK_ORDERS]
    # The whole default set in index order, the --lite set (more tiles per
    # launch, fewer cases) in the other orders.
    cmds = [[str(exe)] if order == "forward" else [str(exe), "--lite"]
            for order, _, _ in BLOCK_ORDERS]
    cmds.append([str(exe), "--contracts"])
    envs.append({"EMU_DRIVER_VERSION": "12040"})  # CUDA 12.4 driver
    failures, outputs = _run_all(cmds, envs)
    assert not failures, "\n\n".join(failures)
    for output in outputs:
        assert " 0 failures" in output, output[-2000:]


def test_harness_check_mode_passes_under_cpu_emulation(emulated_kernels):
    """The GPU harness's own checking code (input generation on the device,
    GPU runs twice for determinism, comparisons, error-text matching) run
    under the emulation at tiny N, full and --quick (the compute-sanitizer
    set), so the GPU run does not fail on a harness bug."""
    cxx, flags, objs, harness, out = emulated_kernels
    exe = out / "harness_emu"
    link = subprocess.run([cxx, *flags, harness, *objs, "-o", str(exe)],
                          capture_output=True, text=True, timeout=600)
    assert link.returncode == 0, link.stderr[-4000:]
    (out / "full").mkdir()
    (out / "quick").mkdir()
    failures, outputs = _run_all(
        [[str(exe), "--check-only", "--max-n", "5", "--out",
          str(out / "full")],
         [str(exe), "--quick", "--max-n", "5000", "--out",
          str(out / "quick")]],
        [{"EMU_BLOCK_ORDER": "reverse"}, {"EMU_BLOCK_ORDER": "shuffle"}])
    assert not failures, "\n\n".join(failures)
    for output in outputs:
        assert ", 0 failures" in output, output[-2000:]
    assert (out / "full" / "check.md").is_file()
    assert "float32 | vote" in (out / "quick" / "check.md").read_text()


def test_cpu_only_build_ignores_cuda_sources():
    """Without a CUDA TensorFlow the GPU sources stay out of the build and
    its cache key, so the CPU build is exactly what it was."""
    import tensorflow as tf

    from tf_sparsesign.ops import _build, _cuda

    src = _build.source_dir()
    for rel in (_build.CUDA_SOURCES + _build.CUDA_TF_SOURCES
                + _build.CUDA_HEADERS):
        assert (src / rel).is_file(), rel
    if not tf.test.is_built_with_cuda():
        assert _cuda.build_plan("g++") is None
    cpu_key = _build.build_key(src, [], [], "x", "g++")
    assert _build.build_key(src, [], [], "x", "g++", None) == cpu_key


def test_gpu_device_script_runs_end_to_end_under_emulation(tmp_path):
    """benchmarks/gpu/run_gpu.sh with EMULATE=1: the same steps, files and
    summary as on a GPU machine, with the harness built against the CPU
    emulation (tiny sizes; no sanitizer, no torch), so that the one GPU
    run a session gets is not lost to a script bug."""
    if shutil.which("g++") is None or shutil.which("make") is None:
        pytest.skip("g++ and make are needed")
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu" / "run_gpu.sh")],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "EMULATE": "1", "OUT": str(out),
             "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    for row in ("| build | ok |", "| check (max N 5) | ok |",
                "| benchmark | ok |",
                "| compute-sanitizer | skipped (emulation) |",
                "| torch.topk | skipped (emulation) |"):
        assert row in summary, summary
    assert "CPU emulation" in (out / "gpu.csv").read_text()
    if shutil.which("nvcc"):
        assert "release" in (out / "nvcc.txt").read_text()
    assert ", 0 failures" in (out / "check.md").read_text()
    bench = (out / "bench.csv").read_text()
    assert "FAILED" not in bench
    assert "vote,int32,3000,30,8,0.01,weighted" in bench, bench
    assert "encode,float32,3000,30,0,0.01,+residual" in bench, bench
