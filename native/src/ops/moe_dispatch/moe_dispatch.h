// moe_dispatch: a mixture of experts' tokens moved into expert-contiguous rows, and back.
// Assignment a = choice · tokens + token is the router's order (ops/router); a kept assignment
// of expert e has a rank, its position among e's kept assignments in order a. Expert e's rows
// (slots) start at offset(e), so the experts run as GEMMs over contiguous rows.
//   segment_offsets (dropless): offset[e] = Σ_{e' < e} counts[e'] rounded up to `segment` rows
//   place:     slot[a] = offset(e) + rank[a] for kept a, −1 for dropped; source[s] = a for the
//              slot's assignment, −1 for slots nobody took. offset(e) = offsets[e], or
//              e · capacity when offsets is null.
//   gather:    dst[s] = scale[a] · src[a mod tokens] for source[s] = a (scale null: 1); 0 for
//              empty slots. The forward gathers x; the backward gathers dy scaled by the gates.
//   combine:   dst[t] = Σ over t's kept a = c · tokens + t, in choice order, of scale[a] ·
//              src[slot[a]] (scale null: 1). gather's adjoint: ⟨gather(x), Y⟩ = ⟨x, combine(Y)⟩.
//   gate_grad: dgates[a] = ⟨dy[a mod tokens], out[slot[a]]⟩, 0 for dropped: combine's
//              gradient with respect to its scale.
// Rows are d wide; src/dst rows of tokens are (tokens, d), rows of slots (slots, d).
#pragma once
#include <cstdint>

namespace ml::cpu {

void segment_offsets(const int64_t* counts, int64_t experts, int64_t segment, int64_t* offsets);

void place(const int32_t* expert, const uint8_t* kept, const int32_t* rank, const int64_t* offsets, int64_t capacity,
           int64_t assignments, int64_t slots, int32_t* slot, int32_t* source);

template <typename T>
void gather(const T* src, const T* scale, const int32_t* source, int64_t slots, int64_t tokens, int64_t d, T* dst);

template <typename T>
void combine(const T* src, const T* scale, const int32_t* slot, int64_t tokens, int64_t top_k, int64_t d, T* dst);

template <typename T>
void gate_grad(const T* dy, const T* out, const int32_t* slot, int64_t tokens, int64_t assignments, int64_t d,
               T* dgates);

}  // namespace ml::cpu

#include "../../core/cuda_fwd.h"

namespace ml::cuda {

// The same on device pointers, enqueued on `stream`, with no host synchronisation; T is float
// or __nv_bfloat16 (fp32 sums, one rounding to T). No atomics: every sum has a fixed order.
void segment_offsets(const int64_t* counts, int64_t experts, int64_t segment, int64_t* offsets, cudaStream_t stream);

void place(const int32_t* expert, const uint8_t* kept, const int32_t* rank, const int64_t* offsets, int64_t capacity,
           int64_t assignments, int64_t slots, int32_t* slot, int32_t* source, cudaStream_t stream);

template <typename T>
void gather(const T* src, const T* scale, const int32_t* source, int64_t slots, int64_t tokens, int64_t d, T* dst,
            cudaStream_t stream);

template <typename T>
void combine(const T* src, const T* scale, const int32_t* slot, int64_t tokens, int64_t top_k, int64_t d, T* dst,
             cudaStream_t stream);

template <typename T>
void gate_grad(const T* dy, const T* out, const int32_t* slot, int64_t tokens, int64_t assignments, int64_t d,
               T* dgates, cudaStream_t stream);

}  // namespace ml::cuda
