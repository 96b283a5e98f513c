// `oomguard estimate`: the pre-flight estimate and the --fit search.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command_registry.hpp"
#include "estimate_report.hpp"
#include "oomguard/config.hpp"
#include "oomguard/error.hpp"
#include "oomguard/guard/estimate_json.hpp"
#include "oomguard/guard/fit_search.hpp"
#include "oomguard/guard/gpu_table.hpp"
#include "oomguard/guard/model_table.hpp"

namespace oomguard::cli {
namespace {

struct EstimateArgs {
  std::string model;
  std::string config_path;
  std::string method = "full";
  std::string dtype = "bf16";
  bool mixed_precision = false;
  bool amp = false;
  std::string optimizer = "adamw";
  std::string optimizer_impl;  // empty: the framework's
  std::string framework = "hf-trainer";
  std::int64_t batch_size = 1;
  std::int64_t seq_len = 1024;
  std::int64_t grad_accum = 1;
  bool gradient_checkpointing = false;
  std::string attention = "sdpa";
  std::int64_t world_size = 1;
  std::string zero = "0";
  std::int64_t lora_r = 16;
  std::string lora_targets;
  std::string adapter_dtype;  // empty: PEFT's fp32
  bool no_double_quant = false;
  bool optimizer_in_backward = false;
  std::string gpu;
  std::string gpu_memory;
  std::string cuda_context = "512MiB";
  double allocator_slack = 0.05;
  bool json = false;
  bool fit = false;
  std::size_t fit_limit = 10;
  bool dump_config = false;
};

nlohmann::json load_config(const EstimateArgs& a, std::string& label, std::vector<std::string>& notes) {
  if (!a.config_path.empty()) {
    if (std::filesystem::is_directory(a.config_path))
      throw config_error(fmt::format("--config: \"{}\" is a folder; give the config.json in it", a.config_path));
    std::ifstream in(a.config_path);
    if (!in) throw config_error(fmt::format("--config: cannot open \"{}\"", a.config_path));
    label = a.config_path;
    try {
      return nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw config_error(fmt::format("--config: \"{}\" is not valid JSON: {}", a.config_path, e.what()));
    }
  }
  label = a.model.empty() ? "mistral-7b-v0.1" : a.model;
  const auto& config = guard::builtin_model_config(label);
  if (const auto builtin = guard::resolve_model_name(label); builtin && *builtin != label) {
    notes.push_back(fmt::format("model \"{}\" read as the built-in {}", label, *builtin));
    label = *builtin;
  }
  return config;
}

guard::EstimateOptions to_options(const EstimateArgs& a, const guard::ModelSpec& spec) {
  guard::EstimateOptions o;
  auto& s = o.setup;
  s.method = guard::parse_method(a.method);
  s.dtype = guard::parse_dtype(a.dtype);
  s.mixed_precision = a.mixed_precision;
  s.amp = a.amp;
  s.optimizer = guard::parse_optimizer(a.optimizer);
  if (!a.optimizer_impl.empty()) s.optimizer_impl = guard::parse_optimizer_impl(a.optimizer_impl);
  s.framework = guard::parse_framework(a.framework);
  s.batch_size = a.batch_size;
  s.seq_len = a.seq_len;
  s.grad_accum = a.grad_accum;
  s.gradient_checkpointing = a.gradient_checkpointing;
  s.attention = guard::parse_attention(a.attention);
  s.world_size = a.world_size;
  s.sharding = guard::parse_sharding(a.zero);
  s.lora_r = a.lora_r;
  if (!a.adapter_dtype.empty()) s.adapter_dtype = guard::parse_dtype(a.adapter_dtype);
  s.double_quant = !a.no_double_quant;
  s.optimizer_in_backward = a.optimizer_in_backward;
  const auto targets = a.lora_targets.empty() ? std::vector<std::string>{} : guard::parse_lora_targets(a.lora_targets);
  s.lora_targets = s.method == guard::Method::full ? std::vector<std::string>{} : guard::resolve_lora_targets(spec, targets);
  if (!a.gpu_memory.empty()) {
    o.gpu_memory_bytes = parse_bytes(a.gpu_memory, "--gpu-memory");
    if (o.gpu_memory_bytes == 0) throw config_error("--gpu-memory must be more than 0 bytes");
    o.gpu_name = a.gpu.empty() ? a.gpu_memory : a.gpu;
  } else if (!a.gpu.empty()) {
    const auto& gpu = guard::find_gpu(a.gpu);
    o.gpu_memory_bytes = gpu.memory_bytes;
    o.gpu_name = gpu.name;
  }
  // The architecture decides SDPA's kernel and cuBLAS's workspace; a --gpu
  // that only labels a --gpu-memory keeps the default (8.0).
  if (const auto* gpu = guard::lookup_gpu(a.gpu)) o.compute_capability = gpu->compute_major * 10 + gpu->compute_minor;
  o.cuda_context_bytes = parse_bytes(a.cuda_context, "--cuda-context");
  if (!(a.allocator_slack >= 0 && a.allocator_slack <= 1))  // NaN too
    throw config_error(fmt::format("--allocator-slack must be a fraction in [0, 1], got {}", a.allocator_slack));
  o.allocator_slack = a.allocator_slack;
  return o;
}

void run(const EstimateArgs& a) {
  std::string label;
  std::vector<std::string> notes;
  const auto config = load_config(a, label, notes);
  if (a.dump_config) {
    std::cout << config.dump(2) << "\n";
    return;
  }
  const auto spec = guard::parse_model_spec(config);
  notes.insert(notes.end(), spec.assumptions.begin(), spec.assumptions.end());
  // On stderr, so that --json's stdout stays one document.
  for (const auto& note : notes) std::cerr << "oomguard estimate: note: " << note << "\n";
  const auto options = to_options(a, spec);
  const auto estimate = guard::estimate(spec, options);
  if (!std::isfinite(estimate.peak_bytes) || estimate.peak_bytes > 0x1p62)
    throw config_error(fmt::format("the estimated peak ({:.3g} bytes) is beyond any device: check --batch-size ({}) "
                                   "and --seq-len ({})",
                                   estimate.peak_bytes, a.batch_size, a.seq_len));
  std::vector<guard::FitCandidate> fits;
  if (a.fit) fits = guard::fit_search(spec, options, a.fit_limit);

  if (a.json) {
    auto doc = guard::to_json(estimate);
    doc["schema"] = guard::kEstimateSchema;
    doc["model"] = {{"name", label},
                    {"source", a.config_path.empty() ? "builtin" : "config"},
                    {"spec", guard::to_json(spec)},
                    {"assumptions", notes}};
    doc["setup"] = guard::to_json(options.setup);
    doc["gpu"] = options.gpu_memory_bytes == 0
                     ? nlohmann::json(nullptr)
                     : nlohmann::json{{"name", options.gpu_name}, {"memory_bytes", options.gpu_memory_bytes}};
    const auto naive = guard::naive_estimate(spec, options.setup);
    doc["naive_estimate"] = {{"weights_bytes", std::llround(naive.weights)},
                             {"optimizer_bytes", std::llround(naive.optimizer)},
                             {"activations_bytes", std::llround(naive.activations)},
                             {"total_bytes", std::llround(naive.total())}};
    if (a.fit) {
      doc["fit"] = nlohmann::json::array();
      for (const auto& c : fits) doc["fit"].push_back(guard::to_json(c));
    }
    std::cout << doc.dump(2) << "\n";
    return;
  }
  ReportContext ctx{label, &spec, &options, options.setup.method == guard::Method::full};
  print_estimate(std::cout, estimate, ctx);
  if (a.fit) print_fit(std::cout, fits, ctx);
}

// Bounds on what a run can be: beyond them the products (tokens x hidden x
// layers) leave what any device could hold, and once left int64 (a 2^31 x
// 2^31 batch printed a negative peak with exit code 0).
constexpr std::int64_t kMaxBatch = 1'000'000;
constexpr std::int64_t kMaxSeqLen = std::int64_t{1} << 24;

// CLI::Range lets NaN through (every comparison with it is false).
CLI::Validator finite_in(double low, double high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        double value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value < low ||
            value > high)
          return fmt::format("{} is not a number from {} to {}", text, low, high);
        return "";
      },
      fmt::format("FINITE in [{} - {}]", low, high));
}

void setup(CLI::App& app) {
  auto args = std::make_shared<EstimateArgs>();
  auto* cmd = app.add_subcommand("estimate", "Estimate the peak device memory of a fine-tuning run before starting it");
  auto* model = cmd->add_option("--model", args->model, "Built-in model (default mistral-7b-v0.1); see --list-models");
  cmd->add_option("--config", args->config_path, "Hugging Face config.json of the model")->excludes(model);
  cmd->add_option("--method", args->method, "full | lora | qlora")->capture_default_str();
  cmd->add_option("--lora-r", args->lora_r, "LoRA rank")->capture_default_str()->check(CLI::Range(1, 65536));
  cmd->add_option("--lora-targets", args->lora_targets,
                  "Comma-separated linear modules, or all-linear (default: the attention projections)");
  cmd->add_option("--adapter-dtype", args->adapter_dtype,
                  "fp32 | bf16 | fp16: the LoRA adapters' dtype (default fp32, PEFT's autocast_adapter_dtype)");
  cmd->add_flag("--no-double-quant", args->no_double_quant,
                "QLoRA without double quantization (bnb_4bit_use_double_quant=False)");
  cmd->add_flag("--optimizer-in-backward", args->optimizer_in_backward,
                "Step each parameter and free its gradient as backward makes it (torchtune's optimizer_in_bwd)");
  cmd->add_option("--dtype", args->dtype, "bf16 | fp16 | fp32 (weights and activations)")->capture_default_str();
  cmd->add_flag("--mixed-precision", args->mixed_precision, "Keep fp32 master weights and fp32 optimizer states");
  cmd->add_flag("--amp", args->amp,
                "fp32 weights, the forward autocast to --dtype (the Trainer's bf16=True on an fp32 model)");
  cmd->add_option("--optimizer", args->optimizer, "adamw | adamw-8bit | paged-adamw-8bit | sgd | adafactor")
      ->capture_default_str();
  cmd->add_option("--optimizer-impl", args->optimizer_impl,
                  "foreach | fused | for-loop: how AdamW steps (default: the framework's; hf-trainer fused, torch "
                  "foreach)");
  cmd->add_option("--framework", args->framework, "hf-trainer | torch: whose defaults (optimizer implementation, "
                                                  "logits kept through backward)")
      ->capture_default_str();
  cmd->add_option("--batch-size", args->batch_size, "Micro-batch per GPU")->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, kMaxBatch));
  cmd->add_option("--seq-len", args->seq_len, "Tokens per sequence")->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, kMaxSeqLen));
  cmd->add_option("--grad-accum", args->grad_accum, "Gradient accumulation steps")->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, kMaxBatch));
  cmd->add_flag("--gradient-checkpointing", args->gradient_checkpointing, "Recompute each layer in backward");
  cmd->add_option("--attention", args->attention, "eager | sdpa | flash")->capture_default_str();
  cmd->add_option("--world-size", args->world_size, "Number of GPUs")->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, kMaxBatch));
  cmd->add_option("--zero", args->zero, "0 | 1 | 2 | 3 | fsdp (sharding over --world-size)")->capture_default_str();
  auto* gpu = cmd->add_option("--gpu", args->gpu, "GPU name (A100-80GB, H100-80GB, L4, RTX-4090, ...; see --list-gpus)");
  cmd->add_option("--gpu-memory", args->gpu_memory, "Device memory, e.g. 24GiB (overrides the size of --gpu)");
  (void)gpu;
  cmd->add_option("--cuda-context", args->cuda_context, "CUDA context and library workspaces")->capture_default_str();
  cmd->add_option("--allocator-slack", args->allocator_slack, "Reserved-but-unused memory, fraction of tensor bytes")
      ->capture_default_str()
      ->check(finite_in(0.0, 1.0));
  cmd->add_flag("--json", args->json, "Print the estimate as JSON (schema oomguard.estimate/1)");
  cmd->add_flag("--fit", args->fit, "Search configurations that fit the GPU, fastest first");
  cmd->add_option("--fit-limit", args->fit_limit, "How many --fit candidates to show")->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  cmd->add_flag("--dump-config", args->dump_config, "Print the model's config.json and exit");
  cmd->add_flag_callback("--list-models", [] {
    for (const auto& n : guard::builtin_model_names()) std::cout << n << "\n";
    throw CLI::Success();
  }, "List the built-in models");
  cmd->add_flag_callback("--list-gpus", [] {
    for (const auto& g : guard::builtin_gpus())
      std::cout << fmt::format("{:<12} {}", g.name, format_bytes(static_cast<std::int64_t>(g.memory_bytes))) << "\n";
    throw CLI::Success();
  }, "List the built-in GPUs");
  cmd->callback([args] { run(*args); });
}

const RegisterCommand kRegistered{"estimate", setup};

}  // namespace
}  // namespace oomguard::cli
