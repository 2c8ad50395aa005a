#include <cmath>

#include "../../core/parallel.h"
#include "grad_clip.h"

namespace ml::cpu {

template <typename T>
double sum_squares(const std::vector<GradSpan<T>>& grads) {
  double total = 0;
  for (const auto& g : grads) {
    // Per-chunk partial sums added in chunk order keep the norm deterministic.
    std::vector<double> partial(num_threads(), 0.0);
    parallel_for(g.size, 1 << 14, [&](int64_t begin, int64_t end) {
      double s = 0;
      for (int64_t i = begin; i < end; ++i) s += double(g.data[i]) * double(g.data[i]);
      partial[thread_index()] = s;
    });
    for (double s : partial) total += s;
  }
  return total;
}

template <typename T>
double global_norm(const std::vector<GradSpan<T>>& grads) {
  return std::sqrt(sum_squares(grads));
}

template <typename T>
double clip_grad_norm(const std::vector<GradSpan<T>>& grads, double max_norm) {
  const double norm = global_norm(grads);
  if (max_norm <= 0 || norm <= max_norm) return norm;
  const T scale = T(max_norm / (norm + 1e-6));
  for (const auto& g : grads)
    parallel_for(g.size, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) g.data[i] *= scale;
    });
  return norm;
}

template <typename T>
void clip_coefficient(const std::vector<GradSpan<T>>& grads, double max_norm, double scale, const double* loss,
                      double* norm_out, double* coef_out, double elsewhere) {
  const double norm = scale * std::sqrt(sum_squares(grads) + elsewhere);
  *norm_out = norm;
  if (!std::isfinite(norm) || (loss && !std::isfinite(*loss))) {
    *coef_out = std::nan("");
    return;
  }
  *coef_out = scale * (max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0);
}

template double sum_squares<float>(const std::vector<GradSpan<float>>&);
template double sum_squares<double>(const std::vector<GradSpan<double>>&);
template double global_norm<float>(const std::vector<GradSpan<float>>&);
template double global_norm<double>(const std::vector<GradSpan<double>>&);
template double clip_grad_norm<float>(const std::vector<GradSpan<float>>&, double);
template double clip_grad_norm<double>(const std::vector<GradSpan<double>>&, double);
template void clip_coefficient<float>(const std::vector<GradSpan<float>>&, double, double, const double*, double*,
                                      double*, double);
template void clip_coefficient<double>(const std::vector<GradSpan<double>>&, double, double, const double*, double*,
                                       double*, double);

}  // namespace ml::cpu
