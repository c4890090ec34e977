"""Independent NumPy oracles for the op semantics (sort-based, obvious)."""

import numpy as np

TINY = np.float32(1.17549435e-38)  # float32 denormals count as zero


def encode(x: np.ndarray, k: int) -> np.ndarray:
    flat = np.asarray(x).reshape(-1)
    mag = np.abs(flat.astype(np.float64))
    idx = np.arange(flat.size)
    nz = idx[mag != 0]
    order = np.lexsort((nz, -mag[nz]))  # |x| descending, then index
    chosen = np.sort(nz[order][:k])
    codes = np.full(k, -1, np.int32)
    neg = flat[chosen].astype(np.float64) < 0
    codes[:chosen.size] = (chosen << 1) | neg
    return codes


def residual(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    flat = np.array(x).reshape(-1).copy()
    flat[codes[codes >= 0] >> 1] = 0
    return flat.reshape(np.shape(x))


def row_valid(row: np.ndarray, num_elements: int) -> bool:
    prev = -1
    for c in row:
        if c == -1:
            continue
        if c < -1 or (c >> 1) >= num_elements or (c >> 1) <= prev:
            return False
        prev = c >> 1
    return True


def vote(codes: np.ndarray, num_elements: int, weights=None, drop=False):
    codes = np.asarray(codes, np.int64)
    m = codes.shape[0]
    w = np.ones(m, np.float32) if weights is None else np.asarray(
        weights, np.float32)
    tally = np.zeros(num_elements, np.float32)
    dropped = 0
    for r in range(m):
        if not row_valid(codes[r], num_elements):
            if not drop:
                raise ValueError(f"row {r} invalid")
            dropped += 1
            continue
        live = codes[r][codes[r] >= 0]
        wr = np.float32(0) if abs(w[r]) < TINY else w[r]  # denormals: 0
        signs = np.where(live & 1, -wr, wr).astype(np.float32)
        tally[live >> 1] += signs  # unique indices: row-order float32 sums
        tally[np.abs(tally) < TINY] = 0
    return np.sign(tally).astype(np.float32), dropped
