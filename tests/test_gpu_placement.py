"""Where a step's ops run on a GPU host (docs/GPU.md), checked on graphs
built under tf.device("/GPU:0") through the public ops API: the N-sized work
is requested on the variables' device, only the sparse vote (M*K codes) on
the host. With the GPU kernels those are the library's ops; without them
TensorFlow's own, still on the GPU. No GPU is needed to build a graph; the
last test builds the library with its real GPU kernels (nvcc) and loads it
into this CPU TensorFlow to see them registered and chosen."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gpu_step_graph as step
from tf_sparsesign import ops
from tf_sparsesign.ops import _library

ROOT = Path(__file__).resolve().parents[1]
GPU = "/device:GPU:0"
CPU = "/device:CPU:0"


def _by_type(rows):
    out = {}
    for kind, device, _ in rows:
        out.setdefault(kind, set()).add(device)
    return out


def _assert_gpu_step(rows, with_kernels: bool):
    """N-sized ops on the GPU, the sparse vote on the host, nothing N-sized
    on the host."""
    devices = _by_type(rows)
    for kind in step.N_SIZED if with_kernels else ("PackedSignsEncode",
                                                   "PackedSignsVote"):
        assert devices.get(kind) == {GPU}, (kind, devices.get(kind))
    assert devices["SparseMajorityVote"] == {CPU}
    on_host = [(kind, size) for kind, device, size in rows if device == CPU]
    assert all(size < step.N for _, size in on_host), on_host
    assert {kind for kind, _ in on_host} <= {
        "SparseMajorityVote", "Const", "Fill", "Sign"}, on_host
    fallbacks = {"CheckNumerics", "ResourceScatterNdSub"}
    if with_kernels:
        assert not fallbacks & set(devices), devices.keys()
    else:  # TensorFlow's ops, on the variables' device
        for kind in fallbacks:
            assert devices.get(kind) == {GPU}, (kind, devices.get(kind))
        assert not {"SparseSignCheckFinite", "SparseSignScatterSub",
                    "SparseSignAccumulateEncode"} & set(devices)
        assert devices["TopKV2"] == {GPU}  # the unfused encode's selection


def test_fused_encode_supported_follows_the_build(compiled, monkeypatch):
    assert ops.fused_encode_supported(
        "/job:localhost/replica:0/task:0/device:CPU:0")
    assert ops.fused_encode_supported("/cpu:0")
    assert not ops.fused_encode_supported("/job:worker/task:0/device:TPU:0")
    assert ops.fused_encode_supported(GPU) == _library.gpu_kernels()
    monkeypatch.setattr(_library, "gpu_kernels", lambda: True)
    assert ops.fused_encode_supported("/job:worker/task:1/device:GPU:3")
    monkeypatch.setattr(_library, "gpu_kernels", lambda: False)
    assert not ops.fused_encode_supported(GPU)
    assert ops.fused_encode_supported(CPU)


def test_cpu_only_library_has_no_gpu_kernels(compiled):
    """This TensorFlow has no CUDA: the library is the CPU build, which
    does not export the GPU kernels' symbol."""
    import tensorflow as tf

    if tf.test.is_built_with_cuda():
        pytest.skip("a CUDA TensorFlow may build the GPU kernels")
    assert not _library.gpu_kernels()
    assert not _library.has_symbol(_library.library_path(),
                                   _library.GPU_SYMBOL)


def test_gpu_step_with_gpu_kernels_stays_on_the_gpu(compiled, monkeypatch):
    monkeypatch.setattr(_library, "gpu_kernels", lambda: True)
    _assert_gpu_step(step.requested(step.step_graph("/GPU:0")), True)


def test_gpu_step_without_gpu_kernels_uses_tensorflow_ops_on_the_gpu(
        compiled, monkeypatch):
    monkeypatch.setattr(_library, "gpu_kernels", lambda: False)
    _assert_gpu_step(step.requested(step.step_graph("/GPU:0")), False)


def test_cpu_step_is_all_compiled_and_on_the_cpu(compiled):
    """No change on a CPU host: every op compiled, nothing moved."""
    rows = step.requested(step.step_graph("/CPU:0"))
    devices = _by_type(rows)
    for kind in step.N_SIZED + ("SparseMajorityVote",):
        assert devices.get(kind) == {CPU}, (kind, devices.get(kind))
    assert not {"CheckNumerics", "ResourceScatterNdSub"} & set(devices)
    assert {device for _, device, _ in rows} == {CPU}


SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from tf_sparsesign.ops import _cuda
_cuda.tf_cuda_version = lambda: "12.5.1"   # as in a CUDA TensorFlow
_cuda.driver_cuda_version = lambda: (13, 0)
_cuda.visible_gpu_archs = lambda: []
import tensorflow as tf
from tensorflow.python.framework import kernels
from tf_sparsesign import ops
from tf_sparsesign.ops import _library
import gpu_step_graph as step
assert ops.is_compiled(), _library.load_error()
registered = {{}}
for op in step.N_SIZED + ("SparseSignEncode", "MajorityVote",
                          "SparseMajorityVote"):
    registered[op] = sorted(
        k.device_type + ":" + ",".join(k.host_memory_arg)
        for k in kernels.get_registered_kernels_for_op(op).kernel)
memory = tf.Variable([0.5, -1.0, 0.0, 0.0])
codes = ops.accumulate_encode(memory, tf.constant([0.0, -2.0, 0.0, 2.0]), 2)
print(json.dumps({{
    "gpu_kernels": _library.gpu_kernels(),
    "fused_gpu": ops.fused_encode_supported("/device:GPU:0"),
    "registered": registered,
    "cpu_codes": codes.numpy().tolist(),
    "cpu_memory": memory.numpy().tolist(),
    "rows": step.requested(step.step_graph("/GPU:0")),
}}))
"""


def test_library_built_with_gpu_kernels_registers_and_chooses_them(
        tmp_path):
    """The library built with its GPU kernels (nvcc, faked CUDA probes, one
    arch) loads into this CPU TensorFlow: its CPU kernels work, every
    step op has a GPU kernel registered (resource handles in host memory),
    the Python side sees them, and the step graph uses them on the GPU."""
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc")
    if nvcc is None or shutil.which("g++") is None:
        pytest.skip("nvcc and g++ are needed to build the GPU kernels")
    env = {**os.environ, "TF_SPARSESIGN_BUILD_DIR": str(tmp_path / "build"),
           "TF_SPARSESIGN_CUDA_ARCHS": "75", "NVCC": nvcc}
    for name in ("TF_SPARSESIGN_DISABLE_CUDA", "TF_SPARSESIGN_DISABLE_COMPILED"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=str(ROOT / "tests"))],
        capture_output=True, text=True, timeout=1500, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert not list((tmp_path / "build").rglob("cuda_build_failed.txt"))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["gpu_kernels"] and out["fused_gpu"]
    reg = out["registered"]
    assert reg["SparseSignAccumulateEncode"].count("GPU:memory") == 4, reg
    assert reg["SparseSignScatterSub"].count("GPU:variable") == 4, reg
    assert reg["SparseSignCheckFinite"].count("GPU:") == 4, reg
    for op in ("PackedSignsEncode", "PackedSignsVote", "SparseSignEncode",
               "MajorityVote"):
        assert [k for k in reg[op] if k.startswith("GPU:")], (op, reg[op])
    assert not [k for k in reg["SparseMajorityVote"] if k.startswith("GPU")]
    assert out["cpu_codes"] == [3, 6]
    assert out["cpu_memory"] == [0.5, 0.0, 0.0, 0.0]
    _assert_gpu_step([tuple(r) for r in out["rows"]], True)


def test_sparse_vote_on_cpu_host_is_not_moved(compiled):
    """Eager on a CPU host: the sparse vote runs where its codes are."""
    import tensorflow as tf

    codes = tf.constant([[0, 5], [1, 5], [0, 6]], tf.int32)
    indices, votes = ops.sparse_majority_vote(codes, 4)
    assert indices.numpy().tolist() == [0, 2, 3]
    assert votes.numpy().tolist() == [1.0, -1.0, 1.0]
    assert "CPU" in indices.device
