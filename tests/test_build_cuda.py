"""The GPU half of the build decides from probes, and never costs the CPU
kernels: a driver too old for nvcc, a missing nvcc, or an nvcc that fails
all end in a CPU-only library that loads and works, with a warning that
names the reason and the fix. The probes (TensorFlow's CUDA version, the
driver's, nvcc's, the visible GPUs) are faked here: no GPU is needed."""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from tf_sparsesign.ops import _build, _cuda

ROOT = Path(__file__).resolve().parents[1]
CUDA13_ARCHS = "compute_75 compute_80 compute_86 compute_89 compute_90"
CUDA12_ARCHS = "compute_50 compute_60 compute_70 compute_75 compute_80 compute_90"


def fake_toolkit(folder: Path, release: str = "13.0",
                 archs: str = CUDA13_ARCHS) -> Path:
    """A CUDA home whose nvcc reports `release` and `archs`, logs every call
    to calls.log, and fails every compilation."""
    (folder / "include").mkdir(parents=True)
    (folder / "include" / "cuda_runtime.h").write_text("#error fake\n")
    (folder / "lib64").mkdir()
    (folder / "bin").mkdir()
    nvcc = folder / "bin" / "nvcc"
    nvcc.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> "{folder}/calls.log"
        case "$1" in
          --version) echo "Cuda compilation tools, release {release}, V{release}.1"
                     echo "Build cuda_{release}.r{release}/compiler.0_0"; exit 0;;
          --list-gpu-arch) echo "{archs}"; exit 0;;
        esac
        echo "fake nvcc: error: this toolkit cannot compile" >&2
        exit 1
        """))
    nvcc.chmod(0o755)
    return nvcc


@pytest.fixture
def toolkit(tmp_path, monkeypatch):
    """A CUDA TensorFlow, a CUDA 13.0 nvcc, a driver for CUDA 13.0, no
    nvidia-smi and no TF_SPARSESIGN_CUDA_ARCHS: each test changes one."""
    nvcc = fake_toolkit(tmp_path / "cuda")
    monkeypatch.setenv("NVCC", str(nvcc))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "cuda"))
    for name in ("TF_SPARSESIGN_DISABLE_CUDA", "TF_SPARSESIGN_CUDA_ARCHS",
                 "CUDA_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_cuda, "tf_cuda_version", lambda: "12.5.1")
    monkeypatch.setattr(_cuda, "driver_cuda_version", lambda: (13, 0))
    monkeypatch.setattr(_cuda, "visible_gpu_archs", lambda: [])
    return nvcc


def plan_and_warnings(cxx="g++"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = _cuda.build_plan(cxx)
    return plan, [str(w.message) for w in caught]


def test_driver_too_old_for_nvcc_builds_cpu_only_and_says_why(
        toolkit, monkeypatch):
    monkeypatch.setattr(_cuda, "driver_cuda_version", lambda: (12, 4))
    plan, messages = plan_and_warnings()
    assert plan is None
    assert len(messages) == 1, messages
    message = messages[0]
    for part in ("GPU kernels not built", "CUDA 13.0", str(toolkit),
                 "driver >= 580", "supports CUDA 12.4 at most",
                 "built with CUDA 12.5.1",  # TensorFlow's own version
                 "NVCC=/usr/local/cuda-12/bin/nvcc", "update the driver",
                 "python -m tf_sparsesign build --force", "CPU kernels"):
        assert part in message, (part, message)


def test_driver_of_the_same_major_version_is_enough(toolkit, monkeypatch):
    """CUDA minor-version compatibility: a 13.0 driver runs a 13.2 build."""
    fake_toolkit(Path(os.environ["CUDA_HOME"]).parent / "c132", "13.2")
    monkeypatch.setenv("NVCC", str(Path(os.environ["CUDA_HOME"]).parent /
                                   "c132" / "bin" / "nvcc"))
    plan, messages = plan_and_warnings()
    assert messages == []
    assert plan is not None and "release 13.2" in plan["version"]


def test_gpu_plan_has_ptx_for_the_lowest_arch_and_the_host_compiler(toolkit):
    plan, messages = plan_and_warnings(cxx="/opt/my-g++")
    assert messages == []
    assert plan["nvcc"] == str(toolkit)
    assert plan["ccbin"] == "/opt/my-g++"
    assert plan["include"] == str(Path(os.environ["CUDA_HOME"]) / "include")
    # No GPU visible (no nvidia-smi): SASS for 80 and 90, PTX for 75, the
    # lowest arch CUDA 13 builds, which any newer GPU can JIT.
    assert plan["gencode"] == ["-gencode=arch=compute_80,code=sm_80",
                               "-gencode=arch=compute_90,code=sm_90",
                               "-gencode=arch=compute_75,code=compute_75"]


def test_archs_of_the_visible_gpus_are_built(toolkit, monkeypatch):
    monkeypatch.setattr(_cuda, "visible_gpu_archs", lambda: ["75", "90"])
    plan, _ = plan_and_warnings()
    assert plan["gencode"] == ["-gencode=arch=compute_75,code=sm_75",
                               "-gencode=arch=compute_90,code=sm_90",
                               "-gencode=arch=compute_75,code=compute_75"]


def test_requested_archs_the_toolkit_cannot_build_are_left_out(
        toolkit, monkeypatch):
    monkeypatch.setenv("TF_SPARSESIGN_CUDA_ARCHS", "70,86;90")
    plan, _ = plan_and_warnings()
    assert plan["gencode"] == ["-gencode=arch=compute_86,code=sm_86",
                               "-gencode=arch=compute_90,code=sm_90",
                               "-gencode=arch=compute_75,code=compute_75"]


def test_cuda12_toolkit_emits_ptx_for_volta(tmp_path, toolkit, monkeypatch):
    """CUDA 12 still builds sm_50; the kernels need sm_70 (__match_any_sync),
    so the PTX fallback is compute_70 (V100 and newer)."""
    nvcc = fake_toolkit(tmp_path / "c12", "12.8", CUDA12_ARCHS)
    monkeypatch.setenv("NVCC", str(nvcc))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "c12"))
    monkeypatch.setattr(_cuda, "driver_cuda_version", lambda: (12, 4))
    plan, messages = plan_and_warnings()
    assert messages == []
    assert plan["gencode"][-1] == "-gencode=arch=compute_70,code=compute_70"


def test_no_driver_or_cpu_tensorflow_or_the_switch_is_silent_cpu_only(
        toolkit, monkeypatch):
    monkeypatch.setattr(_cuda, "driver_cuda_version", lambda: None)
    assert plan_and_warnings() == (None, [])
    monkeypatch.setattr(_cuda, "driver_cuda_version", lambda: (13, 0))
    monkeypatch.setattr(_cuda, "tf_cuda_version", lambda: None)
    assert plan_and_warnings() == (None, [])
    monkeypatch.setattr(_cuda, "tf_cuda_version", lambda: "12.5.1")
    monkeypatch.setenv("TF_SPARSESIGN_DISABLE_CUDA", "1")
    assert plan_and_warnings() == (None, [])


def test_missing_nvcc_on_a_gpu_machine_warns_with_the_fix(toolkit,
                                                         monkeypatch):
    monkeypatch.setenv("NVCC", "/nonexistent/nvcc")
    plan, messages = plan_and_warnings()
    assert plan is None
    assert len(messages) == 1
    for part in ("/nonexistent/nvcc", "CUDA 13.x or older", "NVCC or PATH",
                 "TF_SPARSESIGN_DISABLE_CUDA=1"):
        assert part in messages[0], (part, messages[0])


def test_build_key_follows_the_toolkit_version_not_just_its_path(toolkit):
    src = _build.source_dir()
    plan, _ = plan_and_warnings()
    key = _build.build_key(src, [], [], "x", "g++", plan)
    assert _build.build_key(src, [], [], "x", "g++", dict(plan)) == key
    upgraded = dict(plan, version=plan["version"].replace("13.0", "13.1"))
    assert upgraded["nvcc"] == plan["nvcc"]
    assert _build.build_key(src, [], [], "x", "g++", upgraded) != key
    other_archs = dict(plan, gencode=plan["gencode"][:1])
    assert _build.build_key(src, [], [], "x", "g++", other_archs) != key
    assert _build.build_key(src, [], [], "x", "g++") != key


def test_release_parsing():
    assert _cuda.release_of("Cuda compilation tools, release 13.0, V13.0.88"
                            ) == (13, 0)
    assert _cuda.release_of("Build cuda_12.8.r12.8/compiler") == (12, 8)
    assert _cuda.release_of("no version here") is None


FALLBACK = textwrap.dedent("""
    import os, shutil, warnings
    warnings.simplefilter("always")
    from pathlib import Path
    from tf_sparsesign.ops import _build, _cuda
    _cuda.tf_cuda_version = lambda: "12.5.1"
    _cuda.driver_cuda_version = lambda: (13, 0)
    _cuda.visible_gpu_archs = lambda: []
    # The CPU-only library this process would build: the one the test
    # session built already (same sources and flags), to save a compile.
    cxx = _build._compiler()
    cflags, lflags, tf_version = _build._tf_flags()
    cpu_dir = _build.cache_root() / _build.build_key(
        _build.source_dir(), cflags, lflags, tf_version, cxx, None)
    cpu_dir.mkdir(parents=True)
    shutil.copy(os.environ["CPU_LIBRARY"], cpu_dir / _build.LIBRARY_NAME)
    with warnings.catch_warnings(record=True) as caught:
        import tensorflow as tf
        from tf_sparsesign import ops
        codes = ops.sparse_sign_encode(tf.constant([1.0, -3.0, 2.0]), 2)
        votes = ops.majority_vote(tf.constant([[1, 4]]), 3)
        assert ops.is_compiled()
        assert codes.numpy().tolist() == [3, 4], codes
        assert votes.numpy().tolist() == [-1.0, 0.0, 1.0], votes
        again = _build.build_library()  # the recorded failure: no nvcc
        # What `build --force` does first: nvcc again (the CPU-only rebuild
        # that follows it is left out here to save a minute).
        retried = _build._build_variant(
            _build.source_dir(), cxx, cflags, lflags, tf_version,
            _cuda.build_plan(cxx), True, False)
    ours = [str(w.message) for w in caught if "tf_sparsesign" in str(w.message)]
    assert again == cpu_dir / _build.LIBRARY_NAME, again
    assert retried is None, retried
    failed = list(_build.cache_root().glob("*/" + _build.CUDA_FAILED))
    assert len(failed) == 1 and "fake nvcc: error" in failed[0].read_text()
    print("WARNINGS", len(ours))
    print("FIRST", ours[0])
""")


@pytest.mark.usefixtures("compiled")
def test_nvcc_failure_falls_back_to_the_cpu_library_which_works(tmp_path):
    """A GPU build whose nvcc fails: the failure is recorded, a warning
    says why and how to fix it, and the CPU library is built (here: found)
    and loaded, so the compiled CPU kernels are still in use. Later builds
    reuse the recorded failure; `--force` tries nvcc again."""
    nvcc = fake_toolkit(tmp_path / "cuda")
    env = dict(os.environ, NVCC=str(nvcc), CUDA_HOME=str(tmp_path / "cuda"),
               TF_SPARSESIGN_BUILD_DIR=str(tmp_path / "cache"),
               CPU_LIBRARY=str(_build.build_library()),
               TF_CPP_MIN_LOG_LEVEL="2")
    for name in ("TF_SPARSESIGN_DISABLE_CUDA", "TF_SPARSESIGN_CUDA_ARCHS",
                 "TF_SPARSESIGN_DISABLE_COMPILED"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", FALLBACK], env=env,
                          capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    assert "WARNINGS 3" in proc.stdout, proc.stdout  # build, reuse, retry
    first = proc.stdout.split("FIRST ", 1)[1]
    for part in ("GPU kernels failed to build", "CPU kernels are used",
                 "build --force", "TF_SPARSESIGN_DISABLE_CUDA=1",
                 "fake nvcc: error"):
        assert part in first, (part, first)
    calls = (tmp_path / "cuda" / "calls.log").read_text().splitlines()
    compiles = [c for c in calls if " -c " in f" {c} "]
    assert compiles and all(c.startswith("-ccbin ") for c in compiles), calls
    # nvcc ran for the first build and the forced one, not for the reuse.
    assert len([c for c in compiles if "encode.cu" in c]) == 2, compiles
