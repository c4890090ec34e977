"""The CUDA sources compile (sm_75 and sm_90) wherever nvcc exists, and the
GPU kernels -- encode, vote, and the step's: fused accumulate-encode,
scatter_sub, check_finite, packed signs -- agree with the CPU core (and the
CPU kernels' arithmetic) bit for bit when run on the CPU.

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
KERNEL_SOURCES = ("encode.cu", "vote.cu", "driver.cu", "step.cu", "packed.cu")
#: Host-only checks of the step's kernels (harness/step_checks.h), built
#: into the harness and the emulated self-test.
STEP_HOST_SOURCES = ("step_checks.cc", "packed_checks.cc", "step_bench.cc")
CORE_SOURCES = ("encode", "vote", "packed")
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


def _build_and_run(build_cmd, exe):
    """Compiles (build_cmd writes exe), runs exe, and expects its summary
    line to report no failure."""
    build = subprocess.run(build_cmd, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:] + run.stdout[-2000:]
    assert " 0 failures" in run.stdout


@pytest.fixture(scope="module")
def core_objects(tmp_path_factory):
    """The CPU core compiled once (the reference for both CPU-side checks)."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    out = tmp_path_factory.mktemp("core")
    objs = [str(out / f"core_{name}.o") for name in CORE_SOURCES]
    failures, outputs = _run_all(
        [[cxx, "-std=c++17", "-O2", "-c", str(CORE / f"{name}.cc"), "-o", obj]
         for name, obj in zip(CORE_SOURCES, objs)])
    assert not failures, "\n\n".join(failures)
    return cxx, objs


def test_cuda_sources_compile_for_sm75_and_sm90(tmp_path):
    """Compiles every .cu file (kernels and the standalone harness) for
    sm_75 and sm_90; ptxas' report shows the compaction kernel within its
    __launch_bounds__(256, 4) budget of 64 registers."""
    nvcc = _nvcc()
    sources = [CUDA / name for name in KERNEL_SOURCES] + [
        CUDA / "harness" / "harness.cu"] + [
        CUDA / "harness" / name for name in STEP_HOST_SOURCES]
    cmds = [[nvcc, "-std=c++17", "-O3", "-Xcompiler", "-fPIC", *GENCODE,
             *(["-Xptxas", "-v"] if src.name == "encode.cu" else []),
             *(["-x", "c++"] if src.suffix == ".cc" else []),
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
    tf_dir = ROOT / "custom_ops" / "tf"
    code = [CUDA / name for name in KERNEL_SOURCES] + [
        CUDA / "sparse_sign_cuda.h", CUDA / "step_cuda.h",
        CUDA / "device_util.cuh", CUDA / "select_plan.h",
        CUDA / "float_ops.h", tf_dir / "sparse_sign_kernels_gpu.cc",
        tf_dir / "step_kernels_gpu.cc", tf_dir / "gpu_kernel_util.h"]
    for path in code:
        body = "\n".join(line for line in path.read_text().splitlines()
                         if not line.lstrip().startswith("//"))
        for call in ("cudaStreamSynchronize", "cudaDeviceSynchronize",
                     "cudaMemcpy(", "cudaEventSynchronize"):
            assert call not in body, f"{path.name} calls {call}"


def test_tf_gpu_kernels_compile_with_google_cuda(tmp_path):
    """The TF GPU wrappers compile as in a CUDA build of TensorFlow
    (GOOGLE_CUDA=1) against the installed TF headers, and to nothing
    without it; the library then exports the symbol the Python side looks
    for (ops/_library.py)."""
    nvcc = _nvcc()
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    import tensorflow as tf

    from tf_sparsesign.ops import _library

    cmds, names = [], ("sparse_sign_kernels_gpu", "step_kernels_gpu")
    for name in names:
        src = ROOT / "custom_ops" / "tf" / f"{name}.cc"
        base = [cxx, "-std=c++17", "-O1", "-fPIC", "-w",
                *tf.sysconfig.get_compile_flags(), "-c", str(src)]
        cmds.append(base + ["-DGOOGLE_CUDA=1", f"-I{_cuda_include(nvcc)}",
                            "-o", str(tmp_path / f"{name}_gpu.o")])
        cmds.append(base + ["-o", str(tmp_path / f"{name}_cpu.o")])
    failures, outputs = _run_all(cmds)
    assert not failures, "\n\n".join(failures)

    def nm(name, *flags):
        return subprocess.run(["nm", *flags, str(tmp_path / name)],
                              capture_output=True, text=True).stdout

    symbols = nm("sparse_sign_kernels_gpu_gpu.o", "-C") + nm(
        "step_kernels_gpu_gpu.o", "-C")
    for launcher in ("EncodeAsync", "MajorityVoteAsync", "CheckDriver",
                     "AccumulateEncodeAsync", "ScatterSubAsync",
                     "CheckFiniteAsync", "PackSignsAsync", "PackedVoteAsync"):
        assert f"sparsesign::gpu::{launcher}" in symbols, launcher
    # Finishes in TF's event callback, never by waiting on the stream.
    assert "EventMgr::ThenExecute" in symbols
    assert f"T {_library.GPU_SYMBOL}" in nm("sparse_sign_kernels_gpu_gpu.o")
    for name in names:
        assert "sparsesign" not in nm(f"{name}_cpu.o")


def test_float_ops_equal_the_cpu_kernels_arithmetic(tmp_path):
    """float_ops.h (what the GPU kernels add and subtract with) against
    Eigen's half and bfloat16 and native float/double under TensorFlow's
    flush-to-zero mode: every 16-bit value against hundreds of others."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    import tensorflow as tf

    exe = tmp_path / "float_ops_selftest"
    _build_and_run([cxx, "-std=c++17", "-O2", "-Wall", "-Werror",
                    *tf.sysconfig.get_compile_flags(),
                    str(CUDA / "harness" / "float_ops_selftest.cc"), "-o",
                    str(exe)], exe)


def test_selection_plan_matches_cpu_core(tmp_path, core_objects):
    """Runs the GPU encoder's pass sequence serially (select_plan.h) against
    the CPU core, all four formats and many input families."""
    cxx, objs = core_objects
    exe = tmp_path / "plan_selftest"
    _build_and_run([cxx, "-std=c++17", "-O2", "-Wall", "-Werror",
                    str(CUDA / "harness" / "plan_selftest.cc"), *objs, "-o",
                    str(exe)], exe)


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
    for name in STEP_HOST_SOURCES:  # host code: no rewrite needed
        objs.append(str(out / f"{Path(name).stem}_host_emu.o"))
        cmds.append([cxx, *flags, "-c", str(CUDA / "harness" / name), "-o",
                     objs[-1]])
    failures, outputs = _run_all(cmds)
    assert not failures, "\n\n".join(failures)
    n = len(KERNEL_SOURCES)
    kernels, harness, step = objs[:n], objs[n], objs[n + 1:]
    return cxx, flags, [*core, *kernels, *step], harness, out


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
    tally; the fused encode's add and clear, the ordered and serial sparse
    writes, the finiteness count, packed digits, errors and votes -- against
    the CPU core and the CPU kernels' loops, aligned and misaligned inputs,
    with the blocks started in index order, reversed, shuffled, and
    shuffled with 4 blocks resident at once; every GPU call twice; the
    step's kernels once more at N = 2**17 + 3 (the quick set: a larger N
    than this takes minutes under the emulation); plus the launchers'
    contracts (workspace checks, a driver older than the toolkit
    refused)."""
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
    cmds.append([str(exe), "--large", str(2 ** 17 + 3)])
    envs.append({})
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
    quick = (out / "quick" / "check.md").read_text()
    assert "float32 | vote" in quick
    for op in ("accumulate_encode", "scatter_sub", "check_finite",
               "packed_signs encode + vote"):
        assert f"| {op} " in quick, quick


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
    for row in ("accumulate_encode,float32,3000,30,0,0.01,",
                "scatter_sub,float32,3000,", "check_finite,float32,3000,0,0,",
                "packed_signs_encode,int32,3000,30,1,",
                "packed_signs_vote,int32,3000,0,8,"):
        assert row in bench, bench
    check = (out / "check.md").read_text()
    assert "| float16 | accumulate_encode" in check, check
