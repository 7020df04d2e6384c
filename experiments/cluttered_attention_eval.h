// Evaluation of an attention model (sparse_hyper/attention_model.h) on a
// cluttered set, in evaluation mode without gradients, in batches of 250:
// error rates, where its boxes land, and the glimpse figure's CSV.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "absl/status/status.h"
#include "datasets/cluttered_mnist.h"
#include "experiments/cluttered_attention_run.h"
#include "sparse_hyper/attention_model.h"

namespace indexgrad {
namespace experiments {

// Per image of `set`: whether the evaluation-mode prediction is wrong, bool [N].
at::Tensor WrongPredictions(sparse_hyper::AttentionModel& model, const data::ClutteredSet& set,
                            const c10::Device& device);

// The fraction of true entries of a bool [N] (0 for N = 0).
double Fraction(const at::Tensor& flags);

// Error rate (fraction) of the model in evaluation mode.
double ErrorRate(sparse_hyper::AttentionModel& model, const data::ClutteredSet& set,
                 const c10::Device& device);

// Fills r's localisation fields from `set` and the model's wrong predictions
// on it (`wrong`, bool [N]); a model without boxes leaves them NaN.
void MeasureLocalisation(sparse_hyper::AttentionModel& model, const data::ClutteredSet& set,
                         const at::Tensor& wrong, const c10::Device& device,
                         AttentionRunResult* r);

// The first 8 images of `test` with their label and prediction, and the
// model's boxes and glimpse contents, as CSV rows for tools/plot.py
// attention: image,i,label,prediction,pixels... / box,i,g,y0,x0,y1,x1 /
// glimpse,i,g,k,values...
absl::Status WriteGlimpseFigure(sparse_hyper::AttentionModel& model,
                                const data::ClutteredSet& test, const std::string& path,
                                const c10::Device& device);

}  // namespace experiments
}  // namespace indexgrad
