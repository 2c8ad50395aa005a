// CUDA types named by the op headers' CUDA entry points, declared here so that those headers
// need no CUDA headers: the CPU-only build (no CUDA compiler) never sees them. Both
// declarations are the CUDA runtime's own (an identical typedef may be repeated in C++).
#pragma once

typedef struct CUstream_st* cudaStream_t;
struct __nv_bfloat16;  // cuda_bf16.h: bf16 storage, fp32 arithmetic
