// Error texts of the step's two helpers, scatter_sub and check_finite, in
// one place for their CPU kernels (../tf/step_kernels.cc) and their GPU
// launchers (../cuda/step.cu), so both devices fail with the same words.
// No TensorFlow headers, like the rest of the core.
#ifndef TF_SPARSESIGN_CORE_STEP_ERRORS_H_
#define TF_SPARSESIGN_CORE_STEP_ERRORS_H_

#include <cstdint>
#include <string>

namespace sparsesign {

// scatter_sub: indices[position] = index is not a flat position of the
// variable (n elements, `shape` as TensorShape::DebugString writes it).
inline std::string ScatterIndexError(int64_t position, int64_t index,
                                     int64_t n, const std::string& shape) {
  return "scatter_sub: indices[" + std::to_string(position) + "] = " +
         std::to_string(index) + " is outside the variable's " +
         std::to_string(n) + " elements (shape " + shape +
         "); nothing was written";
}

// check_finite: `bad` of the n entries are NaN or infinite; the first, at
// flat index `first`, is `value` ("nan", "inf" or "-inf").
inline std::string NonFiniteError(const std::string& message, int64_t bad,
                                  int64_t n, int64_t first,
                                  const char* value) {
  return message + " (" + std::to_string(bad) + " of " + std::to_string(n) +
         " entries are not finite; the first, at flat index " +
         std::to_string(first) + ", is " + value + ")";
}

}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CORE_STEP_ERRORS_H_
