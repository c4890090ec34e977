"""Rice wire format: round trips, compiled == reference, corrupt streams."""

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_sparsesign.ops import rice as wire
from tf_sparsesign.reference import rice as ref

ROOT = Path(__file__).resolve().parents[1]
BIG = (1 << 30)  # the largest index space (indices up to 2**30 - 1)


def make_codes(n, k, seed=0, fill=1.0):
    """k slots: round(fill * k) random distinct indices of n, signs random."""
    rng = np.random.default_rng(seed)
    live = min(n, int(round(fill * k)))
    if n > 4 * live:  # sparse: rejection-free sampling of a few indices
        idx = np.unique(rng.integers(0, n, 2 * live + 8))
        idx = np.sort(rng.permutation(idx)[:live])
    else:
        idx = np.sort(rng.choice(n, live, replace=False))
    codes = np.full(k, -1, np.int32)
    codes[:idx.size] = (idx << 1) | rng.integers(0, 2, idx.size)
    return codes


def encode_compiled(codes, n):
    return wire.rice_encode(tf.constant(codes, tf.int32), n).numpy()


def decode_compiled(words, n, k):
    codes, valid = wire.rice_decode(tf.constant(words, tf.int32), n, k,
                                    on_invalid="drop")
    return codes.numpy(), bool(valid.numpy())


def decode_reference(words, n, k):
    return ref.decode_or_drop(np.asarray(words, np.int32), n, k)


def canonical(codes):
    """Padding moved to the tail: what decoding returns."""
    codes = np.asarray(codes, np.int32)
    live = codes[codes != -1]
    return np.concatenate([live, np.full(codes.size - live.size, -1,
                                         np.int32)])


EDGE_CASES = {
    "k=0": (10, []),
    "n=0,k=0": (0, []),
    "k=N": (37, (np.arange(37) << 1) | (np.arange(37) % 3 == 0)),
    "adjacent": (1000, [200, 203, 204, 207]),
    "first and last": (1000, [1, 1998]),
    "only N-1": (5, [9, -1, -1]),
    "huge gap": (BIG, [0, ((BIG - 1) << 1) | 1]),
    "one entry at the end of 2**30": (BIG, [(BIG - 1) << 1]),
    "all padding": (100, [-1] * 7),
    "interior padding": (100, [-1, 4, -1, -1, 9, 31, -1]),
    "n=1": (1, [1]),
    "few of 2**30": (BIG - 1, make_codes(BIG - 1, 20, seed=3)),
}


@pytest.mark.parametrize("case", list(EDGE_CASES), ids=list(EDGE_CASES))
def test_edge_cases_round_trip(compiled, case):
    n, codes = EDGE_CASES[case]
    codes = np.asarray(codes, np.int32).reshape(-1)
    k = codes.size
    words = encode_compiled(codes, n)
    np.testing.assert_array_equal(words, ref.encode(codes, n))
    assert words[0] == words.size <= ref.max_words(n, k)
    assert words[1] == np.count_nonzero(codes != -1)
    for decode in (decode_compiled, decode_reference):
        out, valid = decode(words, n, k)
        assert valid
        np.testing.assert_array_equal(out, canonical(codes))


@pytest.mark.parametrize("n,density", [(1000, 0.5), (10**5, 0.01),
                                       (10**6, 0.001), (BIG - 1, 1e-6)])
def test_random_round_trip_and_size(compiled, n, density):
    k = max(1, int(n * density))
    codes = make_codes(n, k, seed=n)
    words = encode_compiled(codes, n)
    np.testing.assert_array_equal(words, ref.encode(codes, n))
    np.testing.assert_array_equal(decode_compiled(words, n, k)[0], codes)
    np.testing.assert_array_equal(decode_reference(words, n, k)[0], codes)
    # Uniform positions: within a few % of log2 C(n, k) + k (plus header).
    floor = (math.lgamma(n + 1) - math.lgamma(k + 1) -
             math.lgamma(n - k + 1)) / math.log(2) + k
    assert 32 * words.size <= 1.06 * floor + 32 * 4


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), frac=st.floats(0, 1), fill=st.floats(0, 1),
       seed=st.integers(0, 2**31))
def test_compiled_matches_reference(compiled, n, frac, fill, seed):
    k = int(frac * n)
    codes = make_codes(n, k, seed, fill)
    rng = np.random.default_rng(seed)
    np.place(codes, rng.random(k) < 0.1, -1)  # padding anywhere
    words = encode_compiled(codes, n)
    np.testing.assert_array_equal(words, ref.encode(codes, n))
    out, valid = decode_compiled(words, n, k)
    assert valid
    np.testing.assert_array_equal(out, canonical(codes))


def test_parameter_is_the_best_power_of_two():
    """r minimises the expected bits for geometric gaps of density p."""
    for p in (0.5, 0.3, 0.1, 0.05, 0.01, 0.003, 0.001, 1e-4, 1e-6):
        q = 1 - p
        bits = [r + 2 + q ** (2 ** r) / (1 - q ** (2 ** r)) for r in range(31)]
        n = 10**8
        r = wire.rice_parameter(n, int(n * p))
        assert bits[r] <= min(bits) * 1.001, (p, r, int(np.argmin(bits)))
    assert wire.rice_parameter(100, 0) == 0


def test_max_words_is_the_worst_case():
    for n in list(range(0, 40)) + [1000, 4099]:
        for k in {0, 1, 2, 3, n // 3, n // 2, n, n + 5}:
            worst = 0
            for c in range(1, min(k, n) + 1):
                # All gap budget in the first gap: the most unary bits.
                codes = np.arange(n - c, n, dtype=np.int32) << 1
                worst = max(worst, ref.encode(codes, n).size)
            assert ref.max_words(n, k) == max(worst, 3), (n, k)


@pytest.mark.parametrize("codes,why", [
    ([4, -2], "negative"), ([4, 200], "outside"), ([8, 4], "increase"),
    ([8, 9], "increase")])
def test_encode_rejects_invalid_codes(compiled, codes, why):
    with pytest.raises(tf.errors.InvalidArgumentError, match=why):
        encode_compiled(np.array(codes, np.int32), 100)
    with pytest.raises(ref.RiceFormatError):
        ref.encode(np.array(codes, np.int32), 100)


def test_python_argument_checks():
    with pytest.raises(TypeError):
        wire.rice_encode(tf.constant([1.0]), 10)
    with pytest.raises(ValueError):
        wire.rice_encode(tf.constant([[1]]), 10)
    with pytest.raises(ValueError):
        wire.rice_encode(tf.constant([1]), BIG + 1)
    with pytest.raises(TypeError):
        wire.rice_decode(tf.constant([3, 0, 0]), 10.0, 1)
    with pytest.raises(ValueError):
        wire.rice_decode(tf.constant([3, 0, 0]), 10, 1, on_invalid="skip")
    with pytest.raises(ValueError):
        wire.rice_decode(tf.zeros([1, 1, 3], tf.int32), 10, 1)


def test_batched_decode_of_zero_padded_messages(compiled):
    n, k = 10**4, 50
    msgs = [encode_compiled(make_codes(n, k, s, fill=f), n)
            for s, f in ((1, 1.0), (2, 0.3), (3, 0.0))]
    w_max = max(m.size for m in msgs)
    rows = np.stack([np.pad(m, (0, w_max - m.size)) for m in msgs])
    codes = wire.rice_decode(tf.constant(rows), n, k).numpy()
    for s, f, row in zip((1, 2, 3), (1.0, 0.3, 0.0), codes):
        np.testing.assert_array_equal(row, make_codes(n, k, s, fill=f))
    rows[1, -1] = 7  # nonzero padding: only that row is dropped
    codes, valid = wire.rice_decode(tf.constant(rows), n, k, "drop")
    assert valid.numpy().tolist() == [True, False, True]
    assert np.all(codes.numpy()[1] == -1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="message 1"):
        wire.rice_decode(tf.constant(rows), n, k)


def test_pad_to_static_length(compiled):
    n, k = 10**5, 1000
    w_max = wire.rice_max_words(n, k)
    msgs = [wire.rice_encode(tf.constant(make_codes(n, k, s, fill=f)), n,
                             pad_to=w_max) for s, f in ((1, 1.0), (2, 0.1))]
    assert all(m.shape == (w_max,) for m in msgs)
    codes = wire.rice_decode(tf.stack(msgs), n, k).numpy()
    np.testing.assert_array_equal(codes[1], make_codes(n, k, 2, fill=0.1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="pad_to"):
        wire.rice_encode(tf.constant(make_codes(n, k, 1)), n, pad_to=100)


def test_inside_tf_function(compiled):
    n, k = 5000, 40

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def round_trip(codes):
        words = wire.rice_encode(codes, n, pad_to=wire.rice_max_words(n, k))
        return wire.rice_decode(words[None], n, k)

    codes = make_codes(n, k, 7)
    np.testing.assert_array_equal(round_trip(tf.constant(codes)), [codes])


def test_empty_shapes(compiled):
    codes, valid = wire.rice_decode(tf.zeros([0, 5], tf.int32), 10, 3, "drop")
    assert codes.shape == (0, 3) and valid.shape == (0,)
    codes, valid = wire.rice_decode(tf.zeros([2, 0], tf.int32), 10, 3, "drop")
    assert valid.numpy().tolist() == [False, False]
    assert np.all(codes.numpy() == -1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="header"):
        wire.rice_decode(tf.zeros([0], tf.int32), 10, 0)


def test_reference_fallback_when_library_missing(monkeypatch):
    monkeypatch.setattr(wire._library, "load", lambda: None)
    n, k = 3000, 30
    codes = make_codes(n, k, 11, fill=0.7)
    words = wire.rice_encode(tf.constant(codes), n)
    np.testing.assert_array_equal(wire.rice_decode(words, n, k), codes)
    rows = tf.stack([words, tf.reverse(words, [0])])
    out, valid = wire.rice_decode(rows, n, k, on_invalid="drop")
    assert valid.numpy().tolist() == [True, False]
    with pytest.raises(tf.errors.InvalidArgumentError, match="length word"):
        wire.rice_decode(rows, n, k)
    with pytest.raises(tf.errors.InvalidArgumentError, match="increase"):
        wire.rice_encode(tf.constant([8, 4]), n)

    @tf.function
    def in_graph(rows):
        return wire.rice_decode(rows, n, k)

    with pytest.raises(tf.errors.InvalidArgumentError, match="length word"):
        in_graph(rows)
    np.testing.assert_array_equal(in_graph(rows[:1]), codes[None])


# --- corrupt streams ---------------------------------------------------------

MUTATIONS = ("flip", "flip2", "truncate", "extend", "random", "header",
             "shift")


def mutate(words, kind, rng):
    w = words.astype(np.int64).copy()
    if kind in ("flip", "flip2"):
        for _ in range(1 if kind == "flip" else 2):
            pos = rng.integers(0, 32 * w.size)
            w[pos // 32] ^= 1 << (pos % 32)
    elif kind == "truncate":
        w = w[:rng.integers(0, w.size)]
    elif kind == "extend":
        extra = rng.integers(-2**31, 2**31, rng.integers(1, 4))
        w = np.concatenate([w, extra])
    elif kind == "random":
        w = rng.integers(-2**31, 2**31, rng.integers(0, 12))
        if w.size and rng.random() < 0.5:
            w[0] = w.size  # a plausible length word
    elif kind == "header":
        w[rng.integers(0, 3)] += rng.choice([-2, -1, 1, 2, 1 << 20])
    else:  # shift the stream by one bit
        w[3:] = (w[3:] << 1) & 0xFFFFFFFF
    return ((w + 2**31) % 2**32 - 2**31).astype(np.int32)


@settings(max_examples=250, deadline=None)
@given(n=st.sampled_from([1, 7, 100, 5000, BIG]), k=st.integers(0, 60),
       kind=st.sampled_from(MUTATIONS), seed=st.integers(0, 2**31))
def test_corrupt_streams_are_rejected_or_canonical(compiled, n, k, kind,
                                                   seed):
    rng = np.random.default_rng(seed)
    k = min(k, n)
    words = ref.encode(make_codes(n, k, seed, fill=rng.random()), n)
    bad = mutate(words, kind, rng)
    out, valid = decode_compiled(bad, n, k)
    out_ref, valid_ref = decode_reference(bad, n, k)
    assert valid == valid_ref
    np.testing.assert_array_equal(out, out_ref)
    if valid:  # no checksum: a change can be valid, but only canonically
        used = int(bad[0])
        np.testing.assert_array_equal(ref.encode(out, n), bad[:used])
        assert not np.any(bad[used:])
    else:
        assert np.all(out == -1)
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="rice_decode"):
            wire.rice_decode(tf.constant(bad), n, k).numpy()


@pytest.mark.parametrize("k_decode", [0, 2, 3])
def test_more_entries_than_k_is_invalid(compiled, k_decode):
    words = encode_compiled(np.array([2, 4, 6], np.int32), 10)
    assert decode_compiled(words, 10, k_decode)[1] == (k_decode >= 3)
    assert decode_compiled(words, 3, 3)[1] is False  # index 3 >= N


# --- the C++ coder alone, under AddressSanitizer ----------------------------

FUZZ_MAIN = r"""
#include <cstdio>
#include <random>
#include <vector>
#include "rice.h"
using namespace sparsesign;
int main() {
  std::mt19937_64 rng(1);
  const int64_t sizes[] = {1, 2, 9, 100, 4096, 1 << 20, int64_t{1} << 30};
  int failures = 0;
  long decoded_valid = 0;
  for (int t = 0; t < 20000; ++t) {
    const int64_t n = sizes[rng() % 7];
    const int64_t k = rng() % (std::min<int64_t>(n, 64) + 1);
    std::vector<int32_t> codes;
    for (int64_t i = 0; i < n && (int64_t)codes.size() < k; ++i) {
      if (rng() % (n / (k + 1) + 1) == 0) codes.push_back(int32_t(i << 1 | (rng() & 1)));
      if (n > 4096 && rng() % 8 == 0) i += rng() % (n / 8);
    }
    int64_t w = 0;
    if (!RiceEncodedWords(codes.data(), codes.size(), n, &w).ok) { ++failures; continue; }
    if (w > RiceMaxWords(n, k)) ++failures;
    std::vector<int32_t> words(w);
    if (!RiceEncode(codes.data(), codes.size(), n, words.data(), w).ok) ++failures;
    // Mutate, then decode from an exactly sized heap buffer (ASan guards it).
    const int kind = rng() % 4;
    if (kind == 0) words[rng() % w] ^= int32_t(1u << (rng() % 32));
    if (kind == 1) words.resize(rng() % w);
    if (kind == 2) words.push_back(int32_t(rng()));
    if (kind == 3) for (auto& x : words) if (rng() % 3 == 0) x = int32_t(rng());
    std::vector<int32_t> out(k);
    int32_t* buf = words.empty() ? nullptr : new int32_t[words.size()];
    std::copy(words.begin(), words.end(), buf);
    decoded_valid += RiceDecode(buf, words.size(), n, k, out.data()).ok;
    delete[] buf;
  }
  const int64_t probes[][2] = {{0, 0}, {10, 3}, {1000000, 10000},
                               {10000000, 10000}, {int64_t{1} << 30, 1},
                               {int64_t{1} << 30, 1 << 20}};
  for (auto& p : probes)
    std::printf("max %lld %lld %lld\n", (long long)p[0], (long long)p[1],
                (long long)RiceMaxWords(p[0], p[1]));
  std::printf("failures %d valid %ld\n", failures, decoded_valid);
  return failures != 0;
}
"""


def test_cpp_decoder_under_asan(tmp_path):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    core = ROOT / "custom_ops" / "core"
    (tmp_path / "fuzz.cc").write_text(FUZZ_MAIN)
    exe = tmp_path / "fuzz"
    build = subprocess.run(
        [cxx, "-std=c++17", "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", f"-I{core}", str(tmp_path / "fuzz.cc"),
         str(core / "rice.cc"), str(core / "vote.cc"), "-o", str(exe)],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    for line in run.stdout.splitlines():
        if line.startswith("max "):
            _, n, k, words = line.split()
            assert int(words) == ref.max_words(int(n), int(k)), line
