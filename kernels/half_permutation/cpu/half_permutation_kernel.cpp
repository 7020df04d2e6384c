// CPU kernels of half_permutation (parallel over (row, bucket): buckets are
// independent blocks) and half_permutation_apply (parallel over rows of the
// batch for the scatter, over (row, column) for the gathers).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/common/checks.h"
#include "kernels/half_permutation/half_permutation.h"
#include "kernels/half_permutation/half_permutation_math.h"

namespace indexgrad {
namespace {

// Orders the s keys of a bucket by (value, position), a strict total order
// (equal keys keep their order), just enough to split them: afterwards
// order[0 .. s/2) hold the lower half by rank and order[s/2] is the key of
// rank s/2. Returns the index of the key of rank s/2 - 1. Linear time
// (nth_element), no full sort.
template <typename scalar_t>
int64_t split_by_rank(const scalar_t* x, int64_t s, std::vector<int64_t>* order) {
  order->resize(s);
  std::iota(order->begin(), order->end(), 0);
  auto less = [x](int64_t a, int64_t b) { return x[a] < x[b] || (x[a] == x[b] && a < b); };
  const int64_t half = s / 2;
  std::nth_element(order->begin(), order->begin() + half, order->end(), less);
  return *std::max_element(order->begin(), order->begin() + half, less);
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

// Tasks per thread chunk so that a chunk holds at least ~`work` elements:
// small problems run inline instead of waking the thread pool.
int64_t grain_for(int64_t work_per_task, int64_t work = 4096) {
  return std::max<int64_t>(1, work / std::max<int64_t>(1, work_per_task));
}

// dup[k] = 1 where candidate k (s bits at bits + k s) equals an earlier
// one, bit for bit: the first occurrence (lowest k) stays.
void mark_duplicates(const uint8_t* bits, int64_t s, int64_t S, uint8_t* dup,
                     std::vector<int64_t>* scratch) {
  std::fill(dup, dup + S, 0);
  if (S <= 16) {  // few candidates: against every earlier one
    for (int64_t k = 1; k < S; ++k) {
      for (int64_t j = 0; j < k && !dup[k]; ++j) {
        dup[k] = std::memcmp(bits + j * s, bits + k * s, s) == 0;
      }
    }
    return;
  }
  // Many: sort them (ties by k), equal neighbours are duplicates.
  std::vector<int64_t>& order = *scratch;
  order.resize(S);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t c) {
    const int cmp = std::memcmp(bits + a * s, bits + c * s, s);
    return cmp < 0 || (cmp == 0 && a < c);
  });
  for (int64_t j = 1; j < S; ++j) {
    dup[order[j]] = std::memcmp(bits + order[j - 1] * s, bits + order[j] * s, s) == 0;
  }
}

// Returns false if a key is NaN or infinite (checked in the same pass).
// keys[(b n + i) key_stride] is key i of row b.
template <typename scalar_t>
bool forward_buckets(const scalar_t* keys, int64_t key_stride, int64_t batch,
                     const BucketShape& sh, int64_t depth, double temperature,
                     uint64_t seed, int64_t* rows, scalar_t* weights) {
  const int64_t n = sh.n, s = sh.s, S = sh.num_candidates, half = s / 2;
  std::atomic<bool> finite{true};
  at::parallel_for(0, batch * sh.num_buckets, grain_for(s * S), [&](int64_t t0, int64_t t1) {
    std::vector<int64_t> order, cand_order;
    std::vector<double> z(s), logp(S);
    std::vector<scalar_t> xs(s);
    std::vector<uint8_t> bits(static_cast<size_t>(s) * S), dup(S);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / sh.num_buckets;
      const int64_t start = (t % sh.num_buckets) * s;
      const scalar_t* x = xs.data();  // the bucket's keys, contiguous
      bool ok = true;
      for (int64_t i = 0; i < s; ++i) {
        xs[i] = keys[(b * n + start + i) * key_stride];
        ok &= std::isfinite(xs[i]);
      }
      if (!ok) {
        finite = false;
        continue;
      }
      const int64_t lower_middle = split_by_rank(x, s, &order);
      const double m = 0.5 * (static_cast<double>(x[lower_middle]) + x[order[half]]);
      for (int64_t i = 0; i < s; ++i) z[i] = temperature * (static_cast<double>(x[i]) - m);
      // Candidate 0: round(o'), the upper half by stable rank.
      uint8_t* o0 = bits.data();
      for (int64_t r = 0; r < s; ++r) o0[order[r]] = r >= half;
      for (int64_t k = 1; k < S; ++k) {
        sample_balanced(seed, half_permutation_stream(b, depth, n, start, S, k),
                        s, bits.data() + k * s);
      }
      // log p(o) up to a term common to the bucket's candidates.
      for (int64_t k = 0; k < S; ++k) {
        logp[k] = candidate_logit(bits.data() + k * s, ArrayLogits{z.data()}, s);
      }
      mark_duplicates(bits.data(), s, S, dup.data(), &cand_order);
      normalise_proportions(logp.data(), dup.data(), S);
      for (int64_t k = 0; k < S; ++k) {
        write_rows(bits.data() + k * s, s, start, S, static_cast<scalar_t>(logp[k]),
                   rows + (b * n + start) * S + k, weights + (b * n + start) * S + k);
      }
    }
  });
  return finite;
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
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "half_permutation_cpu", [&] {
    finite = forward_buckets<scalar_t>(k.data_ptr<scalar_t>(), 1, batch, sh, depth,
                                       temperature, static_cast<uint64_t>(seed),
                                       rows.data_ptr<int64_t>(),
                                       weights.data_ptr<scalar_t>());
  });
  TORCH_CHECK(finite, "half_permutation: keys contain NaN or infinity");
  return {rows, weights};
}

// d loss / d keys of one level from d loss / d weights [batch, n, S]:
// adds C sum_k g_logit[k] o_ki to out[(b n + i) out_stride]. Returns false
// where a row lies outside its column's bucket.
template <typename scalar_t>
bool keys_backward(const scalar_t* gp, const int64_t* rp, const scalar_t* wp,
                   int64_t batch, const BucketShape& sh, double temperature,
                   scalar_t* out, int64_t out_stride) {
  const int64_t n = sh.n, s = sh.s, S = sh.num_candidates, half = s / 2;
  std::atomic<bool> rows_ok{true};
  at::parallel_for(0, batch * sh.num_buckets, grain_for(s * S), [&](int64_t t0, int64_t t1) {
    std::vector<double> g_logit(S), pick(2 * S, 0.0);  // pick: [zeros | g_logit]
    bool in_buckets = true;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / sh.num_buckets;
      const int64_t start = (t % sh.num_buckets) * s;
      const int64_t base = (b * n + start) * S;  // [s, S] block
      // d loss / d log p_k through the normalisation (softmax over the
      // distinct candidates; duplicates have w = 0 and get nothing).
      for (int64_t k = 0; k < S; ++k) {  // a register sum per candidate
        double acc = 0;
        for (int64_t i = 0; i < s; ++i) acc += gp[base + i * S + k];
        g_logit[k] = acc;
      }
      double mean = 0;
      for (int64_t k = 0; k < S; ++k) mean += wp[base + k] * g_logit[k];
      for (int64_t k = 0; k < S; ++k) {
        pick[S + k] = wp[base + k] * (g_logit[k] - mean);
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
          const int64_t r = rp[base + i * S + k];
          in_buckets &= r >= start && r < start + s;
          // g_logit[k] where candidate k sends key i up, else 0: a table
          // lookup, not a branch (o is random).
          gz += pick[(r >= start + half) * S + k];
        }
        out[(b * n + start + i) * out_stride] += static_cast<scalar_t>(temperature * gz);
      }
    }
    if (!in_buckets) rows_ok = false;
  });
  return rows_ok;
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
  bool in_buckets = true;
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "half_permutation_backward_cpu", [&] {
    in_buckets = keys_backward<scalar_t>(gc.data_ptr<scalar_t>(), rc.data_ptr<int64_t>(),
                                         wc.data_ptr<scalar_t>(), batch, sh, temperature,
                                         grad_keys.data_ptr<scalar_t>(), 1);
  });
  if (!in_buckets) detail::fail_rows_outside_buckets(op, rows, sh.s);
  return grad_keys;
}

// y = P v (scatter) or P^T v (gather); v, y [batch, n, f]. Returns false
// (and skips the entry) where a row lies outside [0, n).
template <typename scalar_t>
bool apply_kernel(const int64_t* rows, const scalar_t* w, const scalar_t* v,
                  int64_t batch, int64_t n, int64_t S, int64_t f,
                  bool transpose, scalar_t* y) {
  std::atomic<bool> in_range{true};
  if (!transpose) {
    // Rows of one batch row scatter into the same output: parallel over b.
    at::parallel_for(0, batch, grain_for(n * S * f), [&](int64_t b0, int64_t b1) {
      bool ok = true;
      for (int64_t b = b0; b < b1; ++b) {
        for (int64_t i = 0; i < n; ++i) {
          const scalar_t* src = v + (b * n + i) * f;
          for (int64_t k = 0; k < S; ++k) {
            const int64_t at = (b * n + i) * S + k;
            const int64_t r = rows[at];
            const bool valid = r >= 0 && r < n;
            ok &= valid;
            const scalar_t wk = w[at];
            if (!valid || wk == 0) continue;
            scalar_t* dst = y + (b * n + r) * f;
            for (int64_t c = 0; c < f; ++c) dst[c] += wk * src[c];
          }
        }
      }
      if (!ok) in_range = false;
    });
  } else {
    at::parallel_for(0, batch * n, grain_for(S * f), [&](int64_t t0, int64_t t1) {
      bool ok = true;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / n;
        scalar_t* dst = y + t * f;
        for (int64_t k = 0; k < S; ++k) {
          const int64_t r = rows[t * S + k];
          const bool valid = r >= 0 && r < n;
          ok &= valid;
          const scalar_t wk = w[t * S + k];
          if (!valid || wk == 0) continue;
          const scalar_t* src = v + (b * n + r) * f;
          for (int64_t c = 0; c < f; ++c) dst[c] += wk * src[c];
        }
      }
      if (!ok) in_range = false;
    });
  }
  return in_range;
}

// dw[b,i,k] = <col_side[b,i], row_side[b,r]>, r = rows[b,i,k]: the
// gradient of the weights of y = P v (col_side = v, row_side = dy) or of
// y = P^T v (col_side = dy, row_side = v). Rows must be in range.
template <typename scalar_t>
void weight_grads(const int64_t* rows, const scalar_t* col_side, const scalar_t* row_side,
                  int64_t batch, int64_t n, int64_t S, int64_t f, scalar_t* gw) {
  at::parallel_for(0, batch * n, grain_for(S * f), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / n;
      const scalar_t* a = col_side + t * f;
      for (int64_t k = 0; k < S; ++k) {
        const scalar_t* c = row_side + (b * n + rows[t * S + k]) * f;
        scalar_t dot = 0;
        for (int64_t j = 0; j < f; ++j) dot += a[j] * c[j];
        gw[t * S + k] = dot;
      }
    }
  });
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
  bool in_range = true;
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "half_permutation_apply_cpu",
                             [&] {
    in_range = apply_kernel<scalar_t>(rc.data_ptr<int64_t>(), wc.data_ptr<scalar_t>(),
                                      vc.data_ptr<scalar_t>(), rows.size(0), rows.size(1),
                                      rows.size(2), features_of(values), transpose,
                                      y.data_ptr<scalar_t>());
  });
  if (!in_range) detail::check_rows_in_range("half_permutation_apply", rows);
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
    if (!apply_kernel<scalar_t>(rp, wc.data_ptr<scalar_t>(), g, batch, n, S, f,
                                !transpose, grad_values.data_ptr<scalar_t>())) {
      detail::check_rows_in_range(op, rows);
    }
    // P: (v[b,i], g[b,r]); P^T: (g[b,i], v[b,r]).
    weight_grads<scalar_t>(rp, transpose ? g : v, transpose ? v : g, batch, n, S, f,
                           grad_weights.data_ptr<scalar_t>());
  });
  return {grad_values, grad_weights};
}


// ---- quicksort_levels: every level in one op ----

std::tuple<TensorVector, TensorVector, TensorVector> quicksort_levels_cpu(
    const at::Tensor& keys, const at::Tensor& values, int64_t num_samples,
    double temperature, int64_t seed) {
  const char* op = "quicksort_levels";
  detail::check_quicksort_args(op, keys, values, num_samples, temperature);
  const int64_t batch = keys.size(0), n = keys.size(1), f1 = values.size(2) + 1;
  const int64_t L = detail::quicksort_level_count(n), S = 1 + num_samples;
  const at::Tensor kx0 = at::cat({keys.unsqueeze(2), values}, 2).contiguous();  // [batch, n, 1 + f]
  TensorVector levels, rows, weights;
  bool finite = true;
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "quicksort_levels_cpu", [&] {
    const scalar_t* in = kx0.data_ptr<scalar_t>();
    for (int64_t d = 0; d < L && finite; ++d) {
      const BucketShape sh{n, n >> d, int64_t{1} << d, S};
      levels.push_back(at::zeros({batch, n, f1}, keys.options()));
      rows.push_back(at::empty({batch, n, S}, keys.options().dtype(at::kLong)));
      weights.push_back(at::empty({batch, n, S}, keys.options()));
      if (batch == 0) continue;
      int64_t* r = rows.back().data_ptr<int64_t>();
      scalar_t* w = weights.back().data_ptr<scalar_t>();
      scalar_t* out = levels.back().data_ptr<scalar_t>();
      finite = forward_buckets<scalar_t>(in, f1, batch, sh, d, temperature,
                                         static_cast<uint64_t>(seed + d), r, w);
      if (finite) apply_kernel<scalar_t>(r, w, in, batch, n, S, f1, false, out);
      in = out;
    }
  });
  TORCH_CHECK(finite, op, ": keys contain NaN or infinity");
  return {levels, rows, weights};
}

std::tuple<at::Tensor, at::Tensor> quicksort_levels_backward_cpu(
    at::TensorList grad_levels, const at::Tensor& keys, const at::Tensor& values,
    at::TensorList levels, at::TensorList rows, at::TensorList weights,
    double temperature) {
  const char* op = "_quicksort_levels_backward";
  const int64_t batch = keys.size(0), n = keys.size(1);
  const int64_t L = detail::quicksort_level_count(n);
  detail::check_quicksort_backward_args(op, grad_levels, keys, values, levels, rows, weights,
                                        temperature);
  const int64_t f1 = values.size(2) + 1, S = L > 0 ? rows[0].size(-1) : 1;
  const at::Tensor kx0 = at::cat({keys.unsqueeze(2), values}, 2).contiguous();
  at::Tensor g = grad_levels[L - 1].contiguous().clone();  // d loss / d (output of the level undone)
  at::Tensor grad_in = at::empty_like(g);
  at::Tensor grad_w = at::empty({batch, n, S}, keys.options());
  bool rows_ok = true;
  AT_DISPATCH_FLOATING_TYPES(keys.scalar_type(), "quicksort_levels_backward_cpu", [&] {
    for (int64_t d = L - 1; d >= 0 && rows_ok; --d) {
      const BucketShape sh{n, n >> d, int64_t{1} << d, S};
      const at::Tensor rc = rows[d].contiguous(), wc = weights[d].contiguous();
      const at::Tensor input = d == 0 ? kx0 : levels[d - 1].contiguous();
      const int64_t* r = rc.data_ptr<int64_t>();
      const scalar_t* w = wc.data_ptr<scalar_t>();
      // y = P in: d in = P^T g (values and the key column alike) ...
      grad_in.zero_();
      rows_ok = apply_kernel<scalar_t>(r, w, g.data_ptr<scalar_t>(), batch, n, S, f1, true,
                                       grad_in.data_ptr<scalar_t>());
      if (!rows_ok) break;
      // ... plus, through P's weights, the keys this level sorted by.
      weight_grads<scalar_t>(r, input.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), batch, n,
                             S, f1, grad_w.data_ptr<scalar_t>());
      rows_ok = keys_backward<scalar_t>(grad_w.data_ptr<scalar_t>(), r, w, batch, sh,
                                        temperature, grad_in.data_ptr<scalar_t>(), f1);
      if (d > 0) grad_in.add_(grad_levels[d - 1]);  // the loss also reads this level's input
      std::swap(g, grad_in);
    }
  });
  TORCH_CHECK(rows_ok, op, ": rows must lie in their column's bucket at every level");
  return {g.select(2, 0).contiguous(), g.narrow(2, 1, f1 - 1).contiguous()};
}
}  // namespace

TORCH_LIBRARY_IMPL(indexgrad, CPU, m) {
  m.impl("half_permutation", TORCH_FN(half_permutation_cpu));
  m.impl("_half_permutation_backward", TORCH_FN(half_permutation_backward_cpu));
  m.impl("half_permutation_apply", TORCH_FN(half_permutation_apply_cpu));
  m.impl("_half_permutation_apply_backward",
         TORCH_FN(half_permutation_apply_backward_cpu));
  m.impl("quicksort_levels", TORCH_FN(quicksort_levels_cpu));
  m.impl("_quicksort_levels_backward", TORCH_FN(quicksort_levels_backward_cpu));
}

}  // namespace indexgrad
