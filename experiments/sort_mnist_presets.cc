#include "experiments/sort_mnist_presets.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "experiments/common/flags.h"

namespace indexgrad {
namespace experiments {

absl::StatusOr<SortPreset> SortPresetNamed(const std::string& name) {
  SortPreset p;
  if (name == "default") return p;
  if (name == "paper") {
    p.sizes = {4, 8, 16};
    p.digits = 3;
    p.batch = 64;
    p.lr = 5e-5;
  } else if (name == "neuralsort") {
    p.sizes = {3, 5, 7, 9, 15};
    p.digits = 4;
    p.batch = 20;
    p.lr = 1e-4;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--preset must be default, paper or neuralsort, got '", name, "'"));
  }
  p.seeds = 3;
  p.steps = 100000;
  p.paper_keynet = true;
  p.eval_every = 1000;
  p.val_size = 1000;
  p.test_size = 10000;
  return p;
}

absl::Status ApplySortOverrides(const SortFlagOverrides& o, SortPreset* p) {
  const auto bad = [](const char* flag, const std::string& what, const auto& got) {
    return FlagError(flag, what, got);
  };
  if (!o.methods.empty()) {
    const absl::Status st =
        ParseChoices("methods", o.methods, {"quicksort", "neuralsort", "softsort"}, &p->methods);
    if (!st.ok()) return st;
  }
  if (!o.sizes.empty()) {
    p->sizes.clear();
    for (absl::string_view part : absl::StrSplit(o.sizes, ',')) {
      int64_t n;
      if (!absl::SimpleAtoi(part, &n) || n < 2) {
        return bad("sizes", "integers >= 2", absl::StrCat("'", part, "'"));
      }
      p->sizes.push_back(n);
    }
  }
  if (!o.keynet.empty()) {
    if (o.keynet != "small" && o.keynet != "paper") return bad("keynet", "small or paper", o.keynet);
    p->paper_keynet = o.keynet == "paper";
  }
  struct IntFlag {
    const char* name;
    int64_t value, min;
    int64_t* target;
  };
  for (const IntFlag& f : {IntFlag{"digits", o.digits, 1, &p->digits},
                           IntFlag{"seeds", o.seeds, 1, &p->seeds},
                           IntFlag{"steps", o.steps, 0, &p->steps},
                           IntFlag{"batch", o.batch, 1, &p->batch},
                           IntFlag{"num_samples", o.num_samples, 0, &p->num_samples},
                           IntFlag{"eval_every", o.eval_every, 1, &p->eval_every},
                           IntFlag{"val_size", o.val_size, 1, &p->val_size},
                           IntFlag{"test_size", o.test_size, 1, &p->test_size}}) {
    if (f.value < 0) continue;  // unset
    if (f.value < f.min) return bad(f.name, absl::StrCat("an integer >= ", f.min), f.value);
    *f.target = f.value;
  }
  if (p->digits > 9) return bad("digits", "in [1, 9]", p->digits);
  if (o.lr >= 0 || std::isnan(o.lr)) {
    if (!(o.lr > 0) || !std::isfinite(o.lr)) return bad("lr", "a positive finite number", o.lr);
    p->lr = o.lr;
  }
  if (!(o.temperature > 0) || !std::isfinite(o.temperature)) {
    return bad("temperature", "a positive finite number", o.temperature);
  }
  if (!(o.tau > 0) || !std::isfinite(o.tau)) return bad("tau", "a positive finite number", o.tau);
  p->temperature = o.temperature;
  p->tau = o.tau;
  return absl::OkStatus();
}

SortRunConfig RunConfigFor(const SortPreset& p, const std::string& method, int64_t n) {
  SortRunConfig c;
  c.method = method;
  c.n = n;
  c.digits = p.digits;
  c.steps = p.steps;
  c.batch = p.batch;
  c.lr = p.lr;
  c.eval_every = p.eval_every;
  c.num_samples = p.num_samples < 0 ? n : p.num_samples;
  c.temperature = p.temperature;
  c.tau = p.tau;
  c.paper_keynet = p.paper_keynet;
  return c;
}

std::string DescribeSortPreset(const SortPreset& p) {
  return absl::StrCat("n = ", absl::StrJoin(p.sizes, ","), ", ", p.digits, " digits, ",
                      absl::StrJoin(p.methods, ","), ", ", p.seeds, " seeds x ", p.steps,
                      " steps, batch ", p.batch, ", lr ", p.lr, ", a = ",
                      p.num_samples < 0 ? std::string("n") : absl::StrCat(p.num_samples), ", ",
                      p.paper_keynet ? "the paper's" : "small", " key network");
}

}  // namespace experiments
}  // namespace indexgrad
