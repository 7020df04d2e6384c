// CPU kernels of half_permutation (parallel over (row, bucket): buckets are
// independent blocks) and half_permutation_apply (parallel over rows of the
// batch for the scatter, over (row, column) for the gathers).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/half_permutation/half_permutation.h"
#include "kernels/half_permutation/half_permutation_math.h"

namespace indexgrad {
namespace {

// The keys of one bucket in the order of a stable sort: by value, equal
// values by position. `order` has s entries.
template <typename scalar_t>
void stable_order(const scalar_t* x, int64_t s, std::vector<int64_t>* order) {
  order->resize(s);
  std::iota(order->begin(), order->end(), 0);
  std::sort(order->begin(), order->end(), [x](int64_t a, int64_t b) {
    return x[a] < x[b] || (x[a] == x[b] && a < b);
  });
}

struct BucketShape {
  int64_t n, s, num_buckets, num_candidates;
};

BucketShape shape_of(const at::Tensor& keys, int64_t depth,
                     int64_t num_candidates) {
  const int64_t n = keys.size(1);
  const int64_t num_buckets = int64_t{1} << depth;
  return {n, n / num_buckets, num_buckets, num_candidates};
}

template <typename scalar_t>
void forward_buckets(const scalar_t* keys, int64_t batch, const BucketShape& sh,
                     int64_t depth, double temperature, uint64_t seed,
                     int64_t* rows, scalar_t* weights) {
  const int64_t n = sh.n, s = sh.s, S = sh.num_candidates, half = s / 2;
  at::parallel_for(0, batch * sh.num_buckets, 1, [&](int64_t t0, int64_t t1) {
    std::vector<int64_t> order, cand_order;
    std::vector<double> ls1(s), ls0(s), logp(S);
    std::vector<uint8_t> bits(static_cast<size_t>(s) * S), dup(S);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / sh.num_buckets;
      const int64_t start = (t % sh.num_buckets) * s;
      const scalar_t* x = keys + b * n + start;
      stable_order(x, s, &order);
      const double m =
          0.5 * (static_cast<double>(x[order[half - 1]]) + x[order[half]]);
      for (int64_t i = 0; i < s; ++i) {
        const double z = temperature * (static_cast<double>(x[i]) - m);
        ls1[i] = log_sigmoid(z);
        ls0[i] = log_sigmoid(-z);
      }
      // Candidate 0: round(o'), the upper half by stable rank.
      uint8_t* o0 = bits.data();
      for (int64_t r = 0; r < s; ++r) o0[order[r]] = r >= half;
      for (int64_t k = 1; k < S; ++k) {
        sample_balanced(seed, half_permutation_stream(b, depth, n, start, S, k),
                        s, bits.data() + k * s);
      }
      for (int64_t k = 0; k < S; ++k) {
        const uint8_t* o = bits.data() + k * s;
        double lp = 0;
        for (int64_t i = 0; i < s; ++i) lp += o[i] ? ls1[i] : ls0[i];
        logp[k] = lp;
      }
      // Duplicates: exact comparison; the first occurrence (lowest k) stays.
      cand_order.resize(S);
      std::iota(cand_order.begin(), cand_order.end(), 0);
      std::sort(cand_order.begin(), cand_order.end(), [&](int64_t a, int64_t c) {
        const int cmp = std::memcmp(bits.data() + a * s, bits.data() + c * s, s);
        return cmp < 0 || (cmp == 0 && a < c);
      });
      std::fill(dup.begin(), dup.end(), 0);
      for (int64_t j = 1; j < S; ++j) {
        dup[cand_order[j]] =
            std::memcmp(bits.data() + cand_order[j - 1] * s,
                        bits.data() + cand_order[j] * s, s) == 0;
      }
      double top = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < S; ++k) {
        if (!dup[k]) top = std::max(top, logp[k]);
      }
      double total = 0;
      for (int64_t k = 0; k < S; ++k) {
        logp[k] = dup[k] ? 0.0 : std::exp(logp[k] - top);
        total += logp[k];
      }
      // Rows by a stable partition (Algorithm 2), one candidate at a time.
      for (int64_t k = 0; k < S; ++k) {
        const uint8_t* o = bits.data() + k * s;
        const scalar_t w = static_cast<scalar_t>(logp[k] / total);
        int64_t lower = 0, upper = 0;
        for (int64_t i = 0; i < s; ++i) {
          const int64_t at = ((b * n) + start + i) * S + k;
          rows[at] = start + (o[i] ? half + upper++ : lower++);
          weights[at] = w;
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> half_permutation_cpu(const at::Tensor& keys,
                                                        int64_t depth,
                                                        int64_t num_samples,
                                                        double temperature,
                                                        int64_t seed) {
  detail::check_half_permutation_args("half_permutation", keys, depth,
                                      num_samples, temperature);
  const int64_t batch = keys.size(0), n = keys.size(1), S = 1 + num_samples;
  at::Tensor rows = at::empty({batch, n, S}, keys.options().dtype(at::kLong));
  at::Tensor weights = at::empty({batch, n, S}, keys.options());
  if (rows.numel() == 0) return {rows, weights};
  const at::Tensor k = keys.contiguous();
  const BucketShape sh = shape_of(keys, depth, S);
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "half_permutation_cpu", [&] {
    forward_buckets<scalar_t>(k.data_ptr<scalar_t>(), batch, sh, depth,
                              temperature, static_cast<uint64_t>(seed),
                              rows.data_ptr<int64_t>(),
                              weights.data_ptr<scalar_t>());
  });
  return {rows, weights};
}

at::Tensor half_permutation_backward_cpu(const at::Tensor& grad_weights,
                                         const at::Tensor& keys,
                                         const at::Tensor& rows,
                                         const at::Tensor& weights,
                                         int64_t depth, double temperature) {
  const char* op = "_half_permutation_backward";
  detail::check_half_permutation_args(op, keys, depth, /*num_samples=*/0,
                                      temperature);
  detail::check_apply_args(op, rows, weights, keys);
  TORCH_CHECK(grad_weights.sizes() == weights.sizes(), op,
              ": grad_weights must have the shape of weights ",
              weights.sizes(), ", got ", grad_weights.sizes());
  TORCH_CHECK(grad_weights.scalar_type() == keys.scalar_type(), op,
              ": grad_weights must have the dtype of keys, got ",
              grad_weights.scalar_type());
  at::Tensor grad_keys = at::zeros_like(keys);
  if (rows.numel() == 0) return grad_keys;
  const at::Tensor rc = rows.contiguous(),
                   wc = weights.contiguous(), gc = grad_weights.contiguous();
  const int64_t batch = keys.size(0), S = rows.size(2);
  const BucketShape sh = shape_of(keys, depth, S);
  const int64_t n = sh.n, s = sh.s, half = s / 2;
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "half_permutation_backward_cpu",
                             [&] {
    const int64_t* rp = rc.data_ptr<int64_t>();
    const scalar_t* wp = wc.data_ptr<scalar_t>();
    const scalar_t* gp = gc.data_ptr<scalar_t>();
    scalar_t* out = grad_keys.data_ptr<scalar_t>();
    at::parallel_for(0, batch * sh.num_buckets, 1, [&](int64_t t0, int64_t t1) {
      std::vector<double> g_logit(S);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / sh.num_buckets;
        const int64_t start = (t % sh.num_buckets) * s;
        const int64_t base = (b * n + start) * S;  // [s, S] block
        // d loss / d log p_k through the normalisation (softmax over the
        // distinct candidates; duplicates have w = 0 and get nothing).
        double mean = 0;
        for (int64_t k = 0; k < S; ++k) {
          double g = 0;
          for (int64_t i = 0; i < s; ++i) g += gp[base + i * S + k];
          g_logit[k] = g;
          mean += wp[base + k] * g;
        }
        for (int64_t k = 0; k < S; ++k) {
          g_logit[k] = wp[base + k] * (g_logit[k] - mean);
        }
        // d log p_k / d z_i = o_ki - sigmoid(z_i), z_i = C (x_i - m). The
        // sigmoid term drops out: sum_k g_logit[k] = 0 (softmax). So does
        // the median: shifting m moves every log p_k by the same
        // C (sum_i sigmoid(z_i) - s/2), every candidate being balanced, and
        // the normalised proportions do not change. Hence
        // d loss / d x_i = C sum_k g_logit[k] o_ki, no sort needed.
        for (int64_t i = 0; i < s; ++i) {
          double gz = 0;
          for (int64_t k = 0; k < S; ++k) {
            if (rp[base + i * S + k] >= start + half) gz += g_logit[k];
          }
          out[b * n + start + i] = static_cast<scalar_t>(temperature * gz);
        }
      }
    });
  });
  return grad_keys;
}

// y = P v (scatter) or P^T v (gather); v, y [batch, n, f].
template <typename scalar_t>
void apply_kernel(const int64_t* rows, const scalar_t* w, const scalar_t* v,
                  int64_t batch, int64_t n, int64_t S, int64_t f,
                  bool transpose, scalar_t* y) {
  if (!transpose) {
    at::parallel_for(0, batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        for (int64_t i = 0; i < n; ++i) {
          const scalar_t* src = v + (b * n + i) * f;
          for (int64_t k = 0; k < S; ++k) {
            const int64_t at = (b * n + i) * S + k;
            const scalar_t wk = w[at];
            if (wk == 0) continue;
            scalar_t* dst = y + (b * n + rows[at]) * f;
            for (int64_t c = 0; c < f; ++c) dst[c] += wk * src[c];
          }
        }
      }
    });
  } else {
    at::parallel_for(0, batch * n, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / n;
        scalar_t* dst = y + t * f;
        for (int64_t k = 0; k < S; ++k) {
          const scalar_t wk = w[t * S + k];
          if (wk == 0) continue;
          const scalar_t* src = v + (b * n + rows[t * S + k]) * f;
          for (int64_t c = 0; c < f; ++c) dst[c] += wk * src[c];
        }
      }
    });
  }
}

int64_t features_of(const at::Tensor& values) {
  return values.size(0) * values.size(1) == 0
             ? 0
             : values.numel() / (values.size(0) * values.size(1));
}

at::Tensor half_permutation_apply_cpu(const at::Tensor& rows,
                                      const at::Tensor& weights,
                                      const at::Tensor& values,
                                      bool transpose) {
  detail::check_apply_args("half_permutation_apply", rows, weights, values);
  at::Tensor y = at::zeros_like(values, at::MemoryFormat::Contiguous);
  if (y.numel() == 0 || rows.size(2) == 0) return y;
  const at::Tensor rc = rows.contiguous(), wc = weights.contiguous(),
                   vc = values.contiguous();
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "half_permutation_apply_cpu",
                             [&] {
    apply_kernel<scalar_t>(rc.data_ptr<int64_t>(), wc.data_ptr<scalar_t>(),
                           vc.data_ptr<scalar_t>(), rows.size(0), rows.size(1),
                           rows.size(2), features_of(values), transpose,
                           y.data_ptr<scalar_t>());
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> half_permutation_apply_backward_cpu(
    const at::Tensor& grad, const at::Tensor& rows, const at::Tensor& weights,
    const at::Tensor& values, bool transpose) {
  const char* op = "_half_permutation_apply_backward";
  detail::check_apply_args(op, rows, weights, values);
  TORCH_CHECK(grad.sizes() == values.sizes(), op,
              ": grad must have the shape of values ", values.sizes(),
              ", got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == values.scalar_type(), op,
              ": grad must have the dtype of values, got ", grad.scalar_type());
  at::Tensor grad_values = at::zeros_like(values, at::MemoryFormat::Contiguous);
  at::Tensor grad_weights = at::zeros_like(weights, at::MemoryFormat::Contiguous);
  if (values.numel() == 0 || rows.size(2) == 0) return {grad_values, grad_weights};
  const at::Tensor rc = rows.contiguous(), wc = weights.contiguous(),
                   vc = values.contiguous(), gc = grad.contiguous();
  const int64_t batch = rows.size(0), n = rows.size(1), S = rows.size(2);
  const int64_t f = features_of(values);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(),
                             "half_permutation_apply_backward_cpu", [&] {
    const int64_t* rp = rc.data_ptr<int64_t>();
    const scalar_t* g = gc.data_ptr<scalar_t>();
    const scalar_t* v = vc.data_ptr<scalar_t>();
    // The gradient of y = P v is P^T g, of y = P^T v is P g.
    apply_kernel<scalar_t>(rp, wc.data_ptr<scalar_t>(), g, batch, n, S, f,
                           !transpose, grad_values.data_ptr<scalar_t>());
    // dw[b,i,k] = <column side, row side>: (v[b,i], g[b,r]) for P,
    // (g[b,i], v[b,r]) for P^T, with r = rows[b,i,k].
    const scalar_t* col_side = transpose ? g : v;
    const scalar_t* row_side = transpose ? v : g;
    scalar_t* gw = grad_weights.data_ptr<scalar_t>();
    at::parallel_for(0, batch * n, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / n;
        const scalar_t* a = col_side + t * f;
        for (int64_t k = 0; k < S; ++k) {
          const scalar_t* c = row_side + (b * n + rp[t * S + k]) * f;
          scalar_t dot = 0;
          for (int64_t j = 0; j < f; ++j) dot += a[j] * c[j];
          gw[t * S + k] = dot;
        }
      }
    });
  });
  return {grad_values, grad_weights};
}

}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("half_permutation", TORCH_FN(half_permutation_cpu));
  m.impl("_half_permutation_backward", TORCH_FN(half_permutation_backward_cpu));
  m.impl("half_permutation_apply", TORCH_FN(half_permutation_apply_cpu));
  m.impl("_half_permutation_apply_backward",
         TORCH_FN(half_permutation_apply_backward_cpu));
}

}  // namespace indexgrad
