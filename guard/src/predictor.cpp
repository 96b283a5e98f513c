#include "oomguard/guard/predictor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "oomguard/error.hpp"
#include "oomguard/guard/optimizer_state.hpp"

namespace oomguard::guard {
namespace {

// The forward/backward peak of a step: measured before the optimizer phase
// when the Python side could, else the step's peak.
double train_peak(const StepObservation& s) {
  return static_cast<double>(s.train_peak ? s.train_peak : s.peak_allocated);
}

double tokens(std::int64_t batch, std::int64_t seq) { return static_cast<double>(batch) * static_cast<double>(seq); }

// The formula's activations for one micro-batch: what autograd saves plus
// the logits the caller holds, plus the layer checkpointing rebuilds.
double formula_bytes(const ActivationModel& m, std::int64_t batch, std::int64_t seq) {
  return m.saved_bytes(batch, seq) + m.logits_bytes(batch, seq) + m.recompute_bytes(batch, seq);
}

// Note [The training step's peak]
// Above what persists across steps (weights, adapters, optimizer state), a
// step's forward/backward peak is the larger of two moments of backward:
//  * its start: the saved activations A and the fp32 gradient of the
//    log-softmax the loss starts backward with (4 * vocab bytes per token,
//    L), both growing with the tokens;
//  * its end: the parameter gradients G, all allocated, with what is left of
//    the activations; this moment barely grows with the tokens.
// Measured on tiny Llamas in cpu mode, the first is A + L to within 0.1% and
// the second G + ~1% of A. So: when the measured step sits in the first
// regime (within 10% of A + L) the measurement calibrates the scale of
// A + L, which is then taken to the longest micro-batch; when it sits above,
// it is the gradient moment, kept as a floor, and the longest micro-batch's
// A + L (unscaled) may exceed it, and so may the gradient moment itself,
// which grows with the tokens at a slope fitted on the steps seen (the
// first one included: its gradient moment is the same). Without a model
// config, L is unknown (0) and the first regime is accepted up to 2 A (the
// scale's own limit), the scale absorbing the loss gradient and the
// backward's temporaries. 1.5 A was too tight: a plain MLP-block LM with a
// 512-token vocabulary peaks at 1.37-1.53 A (simulated A100 and CPU alike),
// and taken for the gradient moment its 8 x 127 batch was predicted 10% low.
// Mistaking the gradient moment for the first regime errs high instead (the
// step's peak scaled with the tokens), the safer side for a guard.

// Note [Activations that outlive their step]
// The activations category holds more than what a step's tokens make: on
// CUDA the first forward allocates cuBLAS's workspace (8.1 MiB on the
// simulated A100) and cuBLASLt's (1 MiB), DDP allocates its gradient buckets
// in step 1's forward, and a script keeps its last logits referenced until
// the next forward replaces them. None of it grows with the tokens, and a
// linear fit through the origin took it as if it did: a plain DDP loop of
// 8 x 15-23 token steps on two simulated A100s carried 10.4 MB of such bytes
// beside 2 MB of real activations, and its 8 x 127 token step was predicted
// at 66.4 MiB for a measured 38.4 MiB (+72%: the scale of Note [The training
// step's peak] came out at 0.24 and was held at its floor). A step's point
// is therefore the activations at its peak less
//  * those live when it opened (activations_at_start), and
//  * those it allocated that outlived it for good: what every later
//    boundary still held above its opening (the next steps' at_start, while
//    the observations are consecutive). This takes the workspaces out of the
//    first step. The latest step has no later boundary and keeps them,
//    which errs high: a step's outputs that the script still holds at its end
//    look the same until the next forward frees them.
// With these points and the 2 A limit, that run's first prediction (step 2)
// is 45.1 MB for a measured 41.1 MB (+9.7%; its latest step still carried
// DDP's buckets). Rebuilding the workspaces' sizes from torch's settings was
// dropped: they depend on the GPU, on CUBLAS_WORKSPACE_CONFIG and on which
// library the matmuls reach.
std::vector<ActivationPoint> activation_points(const std::vector<StepObservation>& steps) {
  std::vector<ActivationPoint> points;
  double later_floor = std::numeric_limits<double>::infinity();  // min at_start of the later consecutive steps
  std::vector<double> lasting(steps.size(), 0.0);
  for (std::size_t i = steps.size(); i-- > 0;) {
    const double at_start = static_cast<double>(steps[i].activations_at_start);
    if (std::isfinite(later_floor)) lasting[i] = std::max(0.0, later_floor - at_start);
    const bool consecutive = i > 0 && steps[i].step == steps[i - 1].step + 1;
    later_floor = consecutive ? std::min(later_floor, at_start) : std::numeric_limits<double>::infinity();
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const StepObservation& s = steps[i];
    const double bytes = static_cast<double>(s.activations_peak) - static_cast<double>(s.activations_at_start) -
                         lasting[i];
    if (s.batch <= 0 || s.seq <= 0 || bytes <= 0) continue;
    points.push_back({s.batch, s.seq, bytes});
  }
  return points;
}

// Note [Reserved bytes grow by segments]
// The caching allocator (c10's, and oomguard's own, which sizes as c10 does:
// Note [Sizes as c10 chooses them] in allocator/src/detail/size_classes.hpp)
// reserves whole segments: 2 MiB for requests up to 1 MiB, 20 MiB for
// requests below 10 MiB, the request rounded to 2 MiB above. A peak that
// needs more than the segments held so far draws new ones, and the last is
// only partly used. Predicting reserved as allocated plus the gap seen so far
// missed that: a plain DDP loop on two simulated A100s (tests/python/
// user_runs/custom_loop.py), with every block checkpointed, was predicted at
// 31.6 MiB reserved, so a 35 MB budget looked safe; its long step then held
// 32 MiB and was refused the next 20 MiB segment. So beyond the segments held,
// growth is counted in whole 20 MiB segments: at most one segment's worth
// more than the need, which on a GPU of tens of GiB is noise and on a small
// run is what decides it. The run's reserved peak so far is a floor: it
// happened already.
constexpr std::uint64_t kSegmentGrowth = std::uint64_t{20} << 20;

std::uint64_t reserved_at_peak(std::uint64_t peak_allocated, const StepObservation& last) {
  const std::uint64_t need = peak_allocated + last.fragmentation;
  std::uint64_t reserved = std::max(need, last.reserved_peak);
  if (last.reserved_peak > 0 && need > last.reserved_peak) {
    const std::uint64_t growth = need - last.reserved_peak;
    reserved = last.reserved_peak + (growth + kSegmentGrowth - 1) / kSegmentGrowth * kSegmentGrowth;
  }
  return reserved + last.non_torch;
}

}  // namespace

namespace {

// Least-squares slope of (step peak above what persists) against dynamic()
// over the observed steps; 0 when their sizes do not differ by 10%.
double gradient_moment_slope(const std::vector<StepObservation>& steps, const Forecast& f) {
  double mx = 0, my = 0, lo = 0, hi = 0;
  std::vector<std::pair<double, double>> points;
  for (const auto& s : steps) {
    if (s.batch <= 0 || s.seq <= 0) continue;
    const double x = f.dynamic(s.batch, s.seq);
    const double y = train_peak(s) - static_cast<double>(s.persistent_at_start);
    points.emplace_back(x, y);
    lo = points.size() == 1 ? x : std::min(lo, x);
    hi = std::max(hi, x);
  }
  if (points.size() < 2 || hi < 1.1 * lo) return 0;
  for (const auto& [x, y] : points) mx += x, my += y;
  mx /= static_cast<double>(points.size()), my /= static_cast<double>(points.size());
  double sxy = 0, sxx = 0;
  for (const auto& [x, y] : points) sxy += (x - mx) * (y - my), sxx += (x - mx) * (x - mx);
  return std::clamp(sxy / sxx, 0.0, 1.5);
}

}  // namespace

double Forecast::dynamic(std::int64_t b, std::int64_t s) const {
  return growth * (fit(b, s) + loss_grad_per_token * tokens(b, s));
}


double ActivationFit::operator()(std::int64_t batch, std::int64_t seq) const {
  const double t = tokens(batch, seq);
  return per_token * t + per_token_squared * t * static_cast<double>(seq);
}

ActivationFit fit_activations(const std::vector<ActivationPoint>& points, const std::optional<ActivationModel>& formula) {
  ActivationFit fit;
  if (points.empty()) return fit;
  // Least squares on x1 = b*s, x2 = b*s*s when the lengths differ enough for
  // the quadratic term to be told apart from the linear one.
  std::int64_t min_seq = points.front().seq, max_seq = points.front().seq;
  for (const auto& p : points) {
    min_seq = std::min(min_seq, p.seq);
    max_seq = std::max(max_seq, p.seq);
  }
  const bool formula_quadratic = formula && formula->per_layer_per_token_per_position +
                                                    formula->recompute_per_token_per_position > 0;
  if (formula_quadratic && max_seq >= 2 * min_seq) {
    double s11 = 0, s12 = 0, s22 = 0, y1 = 0, y2 = 0;
    for (const auto& p : points) {
      const double x1 = tokens(p.batch, p.seq), x2 = x1 * static_cast<double>(p.seq);
      s11 += x1 * x1, s12 += x1 * x2, s22 += x2 * x2, y1 += x1 * p.bytes, y2 += x2 * p.bytes;
    }
    const double det = s11 * s22 - s12 * s12;
    if (std::abs(det) > 1e-9 * s11 * s22) {
      const double a = (y1 * s22 - y2 * s12) / det;
      const double b = (y2 * s11 - y1 * s12) / det;
      if (a >= 0 && b >= 0) {
        fit.per_token = a, fit.per_token_squared = b, fit.method = "least squares";
        return fit;
      }
    }
  }
  // One length (or a degenerate fit): the formula's shape, scaled so that it
  // goes through the measurements (least squares on the scale alone). Without
  // a formula (no transformers config), activations are linear in tokens.
  double a_shape = 1, b_shape = 0;
  if (formula) {
    const auto& m = *formula;
    a_shape = static_cast<double>(m.layers) * m.per_layer_per_token + m.per_token + m.logits_per_token +
              m.recompute_per_token;
    b_shape = static_cast<double>(m.layers) * m.per_layer_per_token_per_position + m.recompute_per_token_per_position;
  }
  double num = 0, den = 0;
  for (const auto& p : points) {
    const double x1 = tokens(p.batch, p.seq);
    const double shape = a_shape * x1 + b_shape * x1 * static_cast<double>(p.seq);
    num += shape * p.bytes, den += shape * shape;
  }
  const double k = den > 0 ? num / den : 0;
  fit.per_token = k * a_shape, fit.per_token_squared = k * b_shape;
  fit.method = formula ? "formula scaled" : "linear";
  return fit;
}

double predicted_optimizer_state(const RunDescription& run) {
  if (!run.optimizer) return 0;
  if (*run.optimizer == Optimizer::sgd && !run.optimizer_momentum) return 0;
  double sum = 0;
  for (const auto& p : run.trainable) sum += optimizer_state_bytes(*run.optimizer, p, run.param_bytes);
  return sum;
}

double predicted_optimizer_transient(const RunDescription& run) {
  if (!run.optimizer) return 0;
  double n = 0, largest = 0;
  for (const auto& p : run.trainable) {
    n += static_cast<double>(p.numel());
    largest = std::max(largest, static_cast<double>(p.numel()));
  }
  return optimizer_step_transient(*run.optimizer, run.optimizer_impl, n, run.param_bytes, largest);
}

Forecast predict(const RunDescription& run, const std::vector<StepObservation>& steps) {
  if (steps.empty()) throw config_error("oomguard predictor: no step observed yet; predict after at least one step");
  Forecast f;
  const StepObservation& last = steps.back();

  // Activations: fitted on every micro-batch seen, anchored on the formula.
  std::optional<ActivationModel> formula;
  if (run.model) formula = activation_model(*run.model, run.activation);
  f.fit = fit_activations(activation_points(steps), formula);

  // Steady steps start with the optimizer state in place; the first step's
  // forward and backward ran without it.
  std::vector<StepObservation> steady;
  for (const auto& s : steps)
    if (s.optimizer_bytes == 0 ||
        static_cast<double>(s.persistent_at_start) >= 0.99 * static_cast<double>(s.weights_bytes + s.optimizer_bytes))
      steady.push_back(s);
  const bool state_seen = last.optimizer_bytes > 0;
  f.optimizer_state = state_seen ? static_cast<double>(last.optimizer_bytes) : predicted_optimizer_state(run);
  f.optimizer_transient = predicted_optimizer_transient(run);
  const std::vector<StepObservation>& refs = steady.empty() ? steps : steady;

  // The reference: the largest micro-batch among the steady steps.
  const StepObservation* ref = &refs.front();
  for (const auto& s : refs)
    if (tokens(s.batch, s.seq) >= tokens(ref->batch, ref->seq)) ref = &s;
  double ref_peak = train_peak(*ref);
  std::string unseen;
  double unseen_bytes = 0;
  if (steady.empty()) {
    // Only first steps seen: their forward and backward lacked the state.
    ref_peak += f.optimizer_state;
    unseen_bytes += f.optimizer_state;
    unseen = state_seen ? " + the optimizer state measured after step 1"
                        : fmt::format(" + the {} state predicted", run.optimizer ? name(*run.optimizer) : "optimizer");
  }

  f.batch = run.longest_batch > 0 ? run.longest_batch : ref->batch;
  f.seq = run.longest_seq > 0 ? run.longest_seq : ref->seq;
  if (tokens(f.batch, f.seq) < tokens(ref->batch, ref->seq)) f.batch = ref->batch, f.seq = ref->seq;
  // See Note [The training step's peak].
  f.loss_grad_per_token = run.model ? 4.0 * static_cast<double>(run.model->vocab) : 0;
  const double persistent_ref = ref_peak - train_peak(*ref) + static_cast<double>(ref->persistent_at_start);
  const double above_ref = ref_peak - persistent_ref;
  const double model_ref = f.dynamic(ref->batch, ref->seq);
  const double regime_limit = run.model ? 1.1 : 2.0;
  f.activation_regime = model_ref > 0 && above_ref <= regime_limit * model_ref;
  if (f.activation_regime) f.growth = std::clamp(above_ref / model_ref, 0.5, 2.0);
  double above_longest = f.dynamic(f.batch, f.seq);
  if (!f.activation_regime) {
    // The gradient moment grows with the tokens too (what is left of the
    // activations, the layer checkpointing rebuilds): its slope comes from
    // the observed steps of different sizes, the first one included.
    f.gradient_slope = gradient_moment_slope(steps, f);
    above_longest = std::max(above_longest, above_ref + f.gradient_slope * (above_longest - model_ref));
  }
  const double extrapolated = above_longest - above_ref;
  const double ref_act = f.fit(ref->batch, ref->seq);
  f.activation_scale = ref_act > 0 ? f.fit(f.batch, f.seq) / ref_act : 1;

  PeakCandidate train{"training step", Phase::backward, run.longest_at_step, persistent_ref + above_longest, 0, ""};
  if (f.batch == ref->batch && f.seq == ref->seq) train.step = ref->step;
  train.uncertainty = 0.01 * train.bytes + 0.1 * std::abs(extrapolated) + 0.25 * unseen_bytes;
  train.reason = fmt::format("micro-batch of {} x {} tokens (step {} measured {}{})", f.batch, f.seq, ref->step,
                             format_bytes(static_cast<std::uint64_t>(train_peak(*ref))), unseen);
  f.candidates.push_back(train);

  // The optimizer step: weights, gradients, state and the foreach temporaries.
  // A steady step measured apart from its forward/backward bounds it: its
  // optimizer phase cannot exceed the step's peak, and set it when higher.
  const double persistent = static_cast<double>(last.weights_bytes);
  const double grads = static_cast<double>(last.gradient_bytes);
  double optimizer_bytes = persistent + grads + f.optimizer_state + f.optimizer_transient;
  std::string optimizer_how = "predicted";
  for (const auto& s : steady) {
    if (s.train_peak == 0 || s.optimizer_bytes == 0) continue;
    const double step_peak = static_cast<double>(s.peak_allocated);
    if (step_peak > static_cast<double>(s.train_peak)) {
      optimizer_bytes = step_peak, optimizer_how = fmt::format("measured at step {}", s.step);
    } else {
      optimizer_bytes = std::min(optimizer_bytes, step_peak);
    }
  }
  PeakCandidate opt{"optimizer step", Phase::optimizer, ref->step, optimizer_bytes, 0, ""};
  opt.uncertainty = 0.05 * (f.optimizer_state + f.optimizer_transient);
  opt.reason = fmt::format("{}: weights {} + gradients {} + state {} + step temporaries {}", optimizer_how,
                           format_bytes(last.weights_bytes), format_bytes(last.gradient_bytes),
                           format_bytes(static_cast<std::uint64_t>(f.optimizer_state)),
                           format_bytes(static_cast<std::uint64_t>(f.optimizer_transient)));
  f.candidates.push_back(opt);

  // Evaluation under no_grad: the logits kept for metrics, their fp32 loss
  // copy and one layer's transient, on top of what persists.
  if (run.eval_batch > 0) {
    const std::int64_t es = run.eval_seq > 0 ? run.eval_seq : f.seq;
    double transient = 0;
    double scale = 1;
    if (formula) {
      const double formula_ref = formula_bytes(*formula, ref->batch, ref->seq);
      scale = formula_ref > 0 ? f.fit(ref->batch, ref->seq) / formula_ref : 1;
      transient = formula->logits_bytes(run.eval_batch, es) * (1 + 4.0 / run.activation.compute_bytes) +
                  tokens(run.eval_batch, es) *
                      (formula->per_layer_per_token + formula->per_layer_per_token_per_position * static_cast<double>(es));
    } else {
      transient = f.fit(run.eval_batch, es) / 2;  // no formula: half of a training forward's activations
    }
    PeakCandidate ev{"evaluation", Phase::eval, run.eval_at_step,
                     persistent + f.optimizer_state + scale * transient, 0, ""};
    ev.uncertainty = 0.25 * scale * transient;
    ev.reason = fmt::format("eval batch of {} x {} tokens, logits kept for metrics", run.eval_batch, es);
    f.candidates.push_back(ev);
  }
  if (run.saves) {
    PeakCandidate save{"save", Phase::save, run.save_at_step,
                       persistent + f.optimizer_state + static_cast<double>(run.save_copy_bytes), 0, ""};
    save.uncertainty = 0.1 * static_cast<double>(run.save_copy_bytes);
    save.reason = fmt::format("checkpoint save copying {}", format_bytes(run.save_copy_bytes));
    f.candidates.push_back(save);
  }

  // Measured peaks bound the prediction from below.
  for (const auto& s : steps) {
    if (static_cast<double>(s.peak_allocated) > f.candidates.front().bytes && &s != ref) {
      PeakCandidate seen{"measured step", Phase::idle, s.step, static_cast<double>(s.peak_allocated), 0,
                         fmt::format("measured at step {}", s.step)};
      f.candidates.push_back(seen);
    }
  }

  const auto winner = std::max_element(f.candidates.begin(), f.candidates.end(),
                                       [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
  Prediction& p = f.prediction;
  p.made_at_step = last.step;
  p.peak_allocated_bytes = static_cast<std::uint64_t>(std::llround(winner->bytes));
  p.peak_reserved_bytes = reserved_at_peak(p.peak_allocated_bytes, last);
  p.phase = winner->phase;
  p.step = winner->step;
  const double band = std::max(winner->uncertainty, 0.01 * winner->bytes);
  p.low_bytes = static_cast<std::uint64_t>(std::llround(std::max(0.0, winner->bytes - band)));
  p.high_bytes = static_cast<std::uint64_t>(std::llround(winner->bytes + band));
  p.reason = fmt::format("{}: {}", winner->name, winner->reason);
  return f;
}

}  // namespace oomguard::guard
