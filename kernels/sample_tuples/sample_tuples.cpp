// Schema and dispatcher entry of sample_tuples.
#include "kernels/sample_tuples/sample_tuples.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace indexgrad {

at::Tensor sample_tuples(const at::Tensor& means, at::IntArrayRef sizes,
                         int64_t num_global, int64_t num_local,
                         at::IntArrayRef region, int64_t seed) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("indexgrad::sample_tuples", "")
                       .typed<decltype(sample_tuples)>();
  return op.call(means, sizes, num_global, num_local, region, seed);
}

}  // namespace indexgrad

TORCH_LIBRARY_FRAGMENT(indexgrad, m) {
  m.def(
      "sample_tuples(Tensor means, int[] sizes, int num_global, "
      "int num_local, int[] region, int seed) -> Tensor");
}
