// Majority vote over workers' sparse sign messages.
//
// Every row is validated before anything is written; then the index space is
// split into disjoint ranges, and each range zeroes its slice of the output,
// adds every valid row's votes in row order (float32, deterministic), and
// takes the sign of the entries it touched. Work is O(num_elements + m*k).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

#include "sparse_sign_core.h"

namespace sparsesign {
namespace {

constexpr int64_t kMinRange = int64_t{1} << 16;
constexpr int64_t kMaxRanges = 64;
constexpr int64_t kTile = 8192;  // floats per cache-resident tile

// A valid row's votes: non-padding codes ascending by index.
struct RowView {
  const int32_t* codes;
  int64_t len;
  float weight;
};

inline int64_t IndexOf(int32_t code) { return code >> 1; }

// Float32 denormals (|v| < 2**-126) count as zero, for weights and partial
// sums alike: the result then does not depend on the FPU's flush-to-zero
// mode (TF's threads flush, plain NumPy does not; GPUs may differ).
constexpr float kTiny = 1.17549435e-38f;
inline float Flush(float v) { return std::fabs(v) < kTiny ? 0.0f : v; }

}  // namespace

std::string ValidateRow(const int32_t* row, int64_t k, int64_t num_elements) {
  int64_t prev = -1;
  int64_t prev_pos = -1;
  for (int64_t j = 0; j < k; ++j) {
    const int32_t code = row[j];
    if (code == kPadCode) continue;
    if (code < kPadCode)
      return "code " + std::to_string(code) + " at position " +
             std::to_string(j) + " is negative and not the padding code -1";
    const int64_t idx = IndexOf(code);
    if (idx >= num_elements)
      return "code " + std::to_string(code) + " at position " +
             std::to_string(j) + " decodes to index " + std::to_string(idx) +
             ", outside [0, " + std::to_string(num_elements) + ")";
    if (idx <= prev)
      return "code " + std::to_string(code) + " at position " +
             std::to_string(j) + " decodes to index " + std::to_string(idx) +
             ", not above index " + std::to_string(prev) + " at position " +
             std::to_string(prev_pos) +
             " (indices in a row must strictly increase)";
    prev = idx;
    prev_pos = j;
  }
  return std::string();
}

namespace {

// Valid rows, ready to tally: views in row order (compacted copies for rows
// with padding inside), or the error for the first invalid row.
struct PreparedRows {
  std::vector<std::vector<int32_t>> compacted;
  std::vector<RowView> rows;
  int64_t dropped = 0;
};

Status PrepareRows(const char* what, const int32_t* codes, int64_t m,
                   int64_t k, int64_t num_elements, const float* weights,
                   bool drop, const ParallelRunner& run, PreparedRows* out) {
  const std::string op(what);
  if (m < 0 || k < 0)
    return Status::Invalid(op + ": codes must have shape [M, k] with "
                           "M, k >= 0, got [" + std::to_string(m) + ", " +
                           std::to_string(k) + "]");
  if (num_elements < 0 || num_elements > kMaxElements)
    return Status::Invalid(
        op + ": num_elements must be in [0, 2**30], got " +
        std::to_string(num_elements));
  if (weights) {
    for (int64_t r = 0; r < m; ++r)
      if (!std::isfinite(weights[r]))
        return Status::Invalid(op + ": weights must be finite, got " +
                               std::to_string(weights[r]) + " for row " +
                               std::to_string(r));
  }

  // Validate every row (in parallel); note rows with interior padding.
  std::vector<std::string> why(m);
  std::vector<int64_t> live(m, 0);  // non-padding codes in the row
  std::vector<char> interior_pad(m, 0);
  auto check_rows = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      // Fast branch-light scan; the message is built only for bad rows.
      const int32_t* row = codes + r * k;
      int64_t cnt = 0, first_pad = k, prev = -1;
      bool ok = true;
      for (int64_t j = 0; j < k; ++j) {
        const int32_t code = row[j];
        if (code == kPadCode) {
          if (first_pad == k) first_pad = j;
          continue;
        }
        const int64_t idx = IndexOf(code);
        ok &= (code >= 0) & (idx < num_elements) & (idx > prev);
        prev = idx;
        ++cnt;
      }
      if (!ok) why[r] = ValidateRow(row, k, num_elements);
      live[r] = cnt;
      interior_pad[r] = cnt != first_pad;
    }
  };
  if (m * k > kMinRange) {
    run(m, check_rows);
  } else {
    check_rows(0, m);
  }
  for (int64_t r = 0; r < m; ++r) {
    if (why[r].empty()) continue;
    if (!drop)
      return Status::Invalid(op + ": row " + std::to_string(r) + " (of " +
                             std::to_string(m) + ") is invalid: " + why[r]);
    ++out->dropped;
  }
  out->rows.reserve(m);
  out->compacted.reserve(m);
  for (int64_t r = 0; r < m; ++r) {
    if (!why[r].empty() || live[r] == 0) continue;
    const int32_t* row = codes + r * k;
    const float w = weights ? Flush(weights[r]) : 1.0f;
    if (interior_pad[r]) {
      out->compacted.emplace_back();
      for (int64_t j = 0; j < k; ++j)
        if (row[j] != kPadCode) out->compacted.back().push_back(row[j]);
      out->rows.push_back({out->compacted.back().data(), live[r], w});
    } else {
      out->rows.push_back({row, live[r], w});
    }
  }
  return Status::Ok();
}

// Disjoint index ranges the tally is split into (one task each).
struct Ranges {
  int64_t count, width;
  explicit Ranges(int64_t num_elements)
      : count(std::clamp<int64_t>(num_elements / kMinRange, 1, kMaxRanges)),
        width((num_elements + count - 1) / count) {}
};

// Each row's first code with index >= lo.
std::vector<const int32_t*> Cursors(const std::vector<RowView>& rows,
                                    int64_t lo) {
  std::vector<const int32_t*> cursor(rows.size());
  for (size_t r = 0; r < rows.size(); ++r)
    cursor[r] = std::lower_bound(
        rows[r].codes, rows[r].codes + rows[r].len, lo,
        [](int32_t code, int64_t v) { return IndexOf(code) < v; });
  return cursor;
}

}  // namespace

Status MajorityVote(const int32_t* codes, int64_t m, int64_t k,
                    int64_t num_elements, const float* weights, bool drop,
                    float* out, int64_t* num_dropped,
                    const ParallelRunner& run) {
  PreparedRows prepared;
  Status st = PrepareRows("majority_vote", codes, m, k, num_elements, weights,
                          drop, run, &prepared);
  if (!st.ok) return st;
  if (num_dropped) *num_dropped = prepared.dropped;
  const std::vector<RowView>& rows = prepared.rows;

  // 3. Tally and sign. Each task owns a disjoint index range and walks it in
  // cache-sized tiles: zero the tile, add every row's votes that fall in it
  // (rows in order, each row's cursor only moves forward), take the signs.
  // The output is thus written to memory about once.
  const Ranges ranges(num_elements);
  auto tally = [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      const int64_t lo = t * ranges.width;
      const int64_t hi = std::min(num_elements, lo + ranges.width);
      std::vector<const int32_t*> cursor = Cursors(rows, lo);
      for (int64_t a = lo; a < hi; a += kTile) {
        const int64_t b = std::min(hi, a + kTile);
        float* tile = out + a;
        std::memset(tile, 0, (b - a) * sizeof(float));
        for (size_t r = 0; r < rows.size(); ++r) {
          const int32_t* c = cursor[r];
          const int32_t* end = rows[r].codes + rows[r].len;
          const float w = rows[r].weight;
          for (; c < end && IndexOf(*c) < b; ++c)
            out[IndexOf(*c)] = Flush(out[IndexOf(*c)] + ((*c & 1) ? -w : w));
          cursor[r] = c;
        }
        for (int64_t i = 0; i < b - a; ++i) tile[i] = SignOf(tile[i]);
      }
    }
  };
  RunTasks(ranges.count, tally, run);
  return Status::Ok();
}

Status SparseMajorityVote(const int32_t* codes, int64_t m, int64_t k,
                          int64_t num_elements, const float* weights,
                          bool drop, std::vector<int32_t>* indices,
                          std::vector<float>* tallies, int64_t* num_dropped,
                          const ParallelRunner& run) {
  PreparedRows prepared;
  Status st = PrepareRows("sparse_majority_vote", codes, m, k, num_elements,
                          weights, drop, run, &prepared);
  if (!st.ok) return st;
  if (num_dropped) *num_dropped = prepared.dropped;
  const std::vector<RowView>& rows = prepared.rows;
  // Each range merges the rows' sorted codes: a heap ordered by (index,
  // row) visits an index's votes in row order, so the float32 sums (and
  // their flushes) are exactly the dense tally's.
  const Ranges ranges(num_elements);
  std::vector<std::vector<int32_t>> range_index(ranges.count);
  std::vector<std::vector<float>> range_vote(ranges.count);
  auto merge = [&](int64_t tb, int64_t te) {
    using Head = std::pair<int64_t, size_t>;  // (index, row)
    for (int64_t t = tb; t < te; ++t) {
      const int64_t lo = t * ranges.width;
      const int64_t hi = std::min(num_elements, lo + ranges.width);
      std::vector<const int32_t*> cursor = Cursors(rows, lo);
      std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heap;
      for (size_t r = 0; r < rows.size(); ++r)
        if (cursor[r] < rows[r].codes + rows[r].len &&
            IndexOf(*cursor[r]) < hi)
          heap.push({IndexOf(*cursor[r]), r});
      while (!heap.empty()) {
        const int64_t index = heap.top().first;
        float sum = 0.0f;
        while (!heap.empty() && heap.top().first == index) {
          const size_t r = heap.top().second;
          heap.pop();
          const int32_t code = *cursor[r]++;
          const float w = rows[r].weight;
          sum = Flush(sum + ((code & 1) ? -w : w));
          if (cursor[r] < rows[r].codes + rows[r].len &&
              IndexOf(*cursor[r]) < hi)
            heap.push({IndexOf(*cursor[r]), r});
        }
        if (sum != 0.0f) {
          range_index[t].push_back(static_cast<int32_t>(index));
          range_vote[t].push_back(sum);
        }
      }
    }
  };
  RunTasks(ranges.count, merge, run);
  indices->clear();
  tallies->clear();
  for (int64_t t = 0; t < ranges.count; ++t) {
    indices->insert(indices->end(), range_index[t].begin(),
                    range_index[t].end());
    tallies->insert(tallies->end(), range_vote[t].begin(),
                    range_vote[t].end());
  }
  return Status::Ok();
}

}  // namespace sparsesign
