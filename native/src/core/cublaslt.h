// The few cuBLASLt entry points the engine uses, declared by us from NVIDIA's public API
// documentation and loaded at run time (dlopen): the build needs no cuBLAS headers or
// libraries, so one build serves machines with and without them. The values below are
// the documented ABI values of cuBLASLt 11-13.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "cuda_fwd.h"

namespace ml::cuda::lt {

using Status = int;  // cublasStatus_t; 0 is success
struct HandleOpaque;
struct MatmulDescOpaque;
struct LayoutOpaque;
struct PreferenceOpaque;
using Handle = HandleOpaque*;
using MatmulDesc = MatmulDescOpaque*;
using Layout = LayoutOpaque*;
using Preference = PreferenceOpaque*;

// cublasOperation_t
constexpr int kOpN = 0, kOpT = 1;
// cublasComputeType_t: fp32 accumulation, no TF32 down-conversion of fp32 inputs
constexpr int kComputeF32 = 68;
// cudaDataType_t
constexpr int kF32 = 0, kBF16 = 14;
// cublasLtMatmulDescAttributes_t (values are int32 cublasOperation_t)
constexpr int kDescTransA = 3, kDescTransB = 4;
// cublasLtMatrixLayoutAttribute_t: batch count is int32, the stride between batch members
// int64 elements
constexpr int kLayoutBatchCount = 5, kLayoutStridedBatchOffset = 6;
// cublasLtMatmulPreferenceAttributes_t: workspace is uint64, alignments are uint32 bytes
constexpr int kPrefMaxWorkspaceBytes = 1, kPrefMinAlignA = 5, kPrefMinAlignB = 6, kPrefMinAlignC = 7,
              kPrefMinAlignD = 8;

struct MatmulAlgo {
  uint64_t data[8];
};

struct HeuristicResult {
  MatmulAlgo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};

struct Api {
  Status (*create)(Handle*);
  Status (*destroy)(Handle);
  Status (*matmul_desc_create)(MatmulDesc*, int compute_type, int scale_type);
  Status (*matmul_desc_destroy)(MatmulDesc);
  Status (*matmul_desc_set_attribute)(MatmulDesc, int attr, const void* buf, size_t size);
  Status (*layout_create)(Layout*, int type, uint64_t rows, uint64_t cols, int64_t ld);
  Status (*layout_destroy)(Layout);
  Status (*layout_set_attribute)(Layout, int attr, const void* buf, size_t size);
  Status (*preference_create)(Preference*);
  Status (*preference_destroy)(Preference);
  Status (*preference_set_attribute)(Preference, int attr, const void* buf, size_t size);
  Status (*algo_get_heuristic)(Handle, MatmulDesc, Layout a, Layout b, Layout c, Layout d, Preference,
                               int requested, HeuristicResult* results, int* returned);
  Status (*matmul)(Handle, MatmulDesc, const void* alpha, const void* A, Layout, const void* B, Layout,
                   const void* beta, const void* C, Layout, void* D, Layout, const MatmulAlgo*, void* workspace,
                   size_t workspace_size, cudaStream_t);
  std::string library;  // the file that was loaded
};

// Loads libcublasLt once ($MAMBALAB_CUBLASLT, then libcublasLt.so.13, .so.12, .so, also under
// /usr/local/cuda/lib64). Throws ml::Error listing what was tried when none loads.
const Api& api();

// cuBLAS's name for a status code, for error messages.
const char* status_name(Status status);

}  // namespace ml::cuda::lt
