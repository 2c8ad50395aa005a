// Element types the engine stores. fp64 exists for gradient checks on the CPU.
#pragma once
#include <cstddef>
#include <string>

#include "error.h"

namespace ml {

enum class DType { F32, F64 };

inline size_t dtype_size(DType dtype) { return dtype == DType::F32 ? 4 : 8; }

inline const char* dtype_name(DType dtype) { return dtype == DType::F32 ? "float32" : "float64"; }

inline DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::F32;
  if (name == "float64") return DType::F64;
  throw Error("dtype: expected 'float32' or 'float64', got '" + name + "'");
}

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
template <>
constexpr DType dtype_of<double>() { return DType::F64; }

}  // namespace ml
