#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../../core/error.h"
#include "../../core/parallel.h"
#include "attention.h"

namespace ml::cpu {
namespace {

void check(const AttentionDims& d) {
  ML_CHECK(d.heads > 0 && d.kv_heads > 0 && d.heads % d.kv_heads == 0, "attention: kv_heads (", d.kv_heads,
           ") must divide heads (", d.heads, ")");
}

// Element offsets of (batch b, position t, head h) in a (batch, len, heads, head_dim) tensor.
int64_t at(const AttentionDims& d, int64_t heads, int64_t b, int64_t t, int64_t h) {
  return ((b * d.len + t) * heads + h) * d.head_dim;
}

double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

template <typename T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* out, T* lse) {
  check(d);
  const int64_t group = d.heads / d.kv_heads, dh = d.head_dim;
  const double scale = 1.0 / std::sqrt(double(dh));
  parallel_for(d.batch * d.heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> qi(dh), kj(dh), s(d.len), o(dh);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / d.heads, h = bh % d.heads, g = h / group;
      for (int64_t i = 0; i < d.len; ++i) {
        std::copy_n(q + at(d, d.heads, b, i, h), dh, qi.begin());
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= i; ++j) {
          std::copy_n(k + at(d, d.kv_heads, b, j, g), dh, kj.begin());
          s[j] = scale * dot(qi.data(), kj.data(), dh);
          m = std::max(m, s[j]);
        }
        double l = 0;
        std::fill(o.begin(), o.end(), 0.0);
        for (int64_t j = 0; j <= i; ++j) {
          const double p = std::exp(s[j] - m);
          l += p;
          const T* vj = v + at(d, d.kv_heads, b, j, g);
          for (int64_t c = 0; c < dh; ++c) o[c] += p * double(vj[c]);
        }
        T* oi = out + at(d, d.heads, b, i, h);
        for (int64_t c = 0; c < dh; ++c) oi[c] = T(o[c] / l);
        lse[(b * d.heads + h) * d.len + i] = T(m + std::log(l));
      }
    }
  });
}

// Threads own (batch, kv head) pairs: every dk, dv row has one writer, so the heads of a group
// add into it in order.
template <typename T>
void attention_backward(const AttentionDims& d, const T* q, const T* k, const T* v, const T* out, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv) {
  check(d);
  const int64_t group = d.heads / d.kv_heads, dh = d.head_dim;
  const double scale = 1.0 / std::sqrt(double(dh));
  parallel_for(d.batch * d.kv_heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> qi(dh), doi(dh), dqi(dh), kj(dh), vj(dh);
    std::vector<double> dkg(d.len * dh), dvg(d.len * dh);
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / d.kv_heads, g = bg % d.kv_heads;
      std::fill(dkg.begin(), dkg.end(), 0.0);
      std::fill(dvg.begin(), dvg.end(), 0.0);
      for (int64_t h = g * group; h < (g + 1) * group; ++h)
        for (int64_t i = 0; i < d.len; ++i) {
          std::copy_n(q + at(d, d.heads, b, i, h), dh, qi.begin());
          std::copy_n(dout + at(d, d.heads, b, i, h), dh, doi.begin());
          const T* oi = out + at(d, d.heads, b, i, h);
          double D = 0;
          for (int64_t c = 0; c < dh; ++c) D += doi[c] * double(oi[c]);
          const double lse_i = double(lse[(b * d.heads + h) * d.len + i]);
          std::fill(dqi.begin(), dqi.end(), 0.0);
          for (int64_t j = 0; j <= i; ++j) {
            std::copy_n(k + at(d, d.kv_heads, b, j, g), dh, kj.begin());
            std::copy_n(v + at(d, d.kv_heads, b, j, g), dh, vj.begin());
            const double p = std::exp(scale * dot(qi.data(), kj.data(), dh) - lse_i);
            const double ds = p * (dot(doi.data(), vj.data(), dh) - D);
            for (int64_t c = 0; c < dh; ++c) {
              dqi[c] += scale * ds * kj[c];
              dkg[j * dh + c] += scale * ds * qi[c];
              dvg[j * dh + c] += p * doi[c];
            }
          }
          T* dq_i = dq + at(d, d.heads, b, i, h);
          for (int64_t c = 0; c < dh; ++c) dq_i[c] = T(dqi[c]);
        }
      for (int64_t j = 0; j < d.len; ++j)
        for (int64_t c = 0; c < dh; ++c) {
          dk[at(d, d.kv_heads, b, j, g) + c] = T(dkg[j * dh + c]);
          dv[at(d, d.kv_heads, b, j, g) + c] = T(dvg[j * dh + c]);
        }
    }
  });
}

#define ML_INSTANTIATE(T)                                                                                        \
  template void attention_forward<T>(const AttentionDims&, const T*, const T*, const T*, T*, T*);               \
  template void attention_backward<T>(const AttentionDims&, const T*, const T*, const T*, const T*, const T*,   \
                                      const T*, T*, T*, T*);
ML_INSTANTIATE(float)
ML_INSTANTIATE(double)

}  // namespace ml::cpu
