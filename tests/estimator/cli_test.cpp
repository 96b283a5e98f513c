// Runs the oomguard executable as a user would.
#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

namespace {

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

Result run(const std::string& args) {
  Result r;
  const std::string command = std::string(OOMGUARD_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

nlohmann::json run_json(const std::string& args) {
  const auto r = run("estimate --json " + args);
  EXPECT_EQ(r.status, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

// Every bad option or value, CLI11's included, exits with status 2 and says
// what was wrong.
void expect_refused(const std::string& args, const std::string& expected) {
  const auto r = run("estimate " + args);
  EXPECT_EQ(r.status, 2) << args;
  EXPECT_NE(r.output.find(expected), std::string::npos) << args << " -> " << r.output;
}

// stdout alone: notes go to stderr, --json's stdout stays one document.
Result run_stdout(const std::string& args) { return run(args + " 2>/dev/null; exit $?"); }

}  // namespace

TEST(Cli, DefaultIsTheReferenceCase) {
  const auto doc = run_json("--gpu A100-80GB");
  EXPECT_EQ(doc["model"]["name"], "mistral-7b-v0.1");
  EXPECT_EQ(doc["setup"]["batch_size"], 1);
  EXPECT_EQ(doc["setup"]["seq_len"], 1024);
  EXPECT_EQ(doc["setup"]["optimizer"], "adamw");
  EXPECT_EQ(doc["setup"]["method"], "full");
  EXPECT_EQ(doc["setup"]["dtype"], "bf16");
}

TEST(Cli, JsonSchemaIsStable) {
  const auto doc = run_json("--model llama-3-8b --gpu H100-80GB --method lora --fit");
  EXPECT_EQ(doc["schema"], "oomguard.estimate/1");
  for (const char* key : {"parameters", "trainable_parameters", "peak_bytes", "allocator_slack_bytes",
                          "cuda_context_bytes", "headroom_bytes"})
    EXPECT_TRUE(doc.at(key).is_number_integer()) << key;
  EXPECT_TRUE(doc.at("fits").is_boolean());
  EXPECT_TRUE(doc.at("peak_phase").is_string());
  for (const char* key : {"model", "setup", "gpu", "categories_at_peak", "activation_model", "naive_estimate"})
    EXPECT_TRUE(doc.at(key).is_object()) << key;
  for (const char* c : {"weights", "gradients", "optimizer", "activations", "adapters", "temporary", "checkpoint",
                        "non_torch", "unknown"})
    EXPECT_TRUE(doc["categories_at_peak"].at(c).is_number_integer()) << c;
  ASSERT_TRUE(doc.at("components").is_array());
  for (const auto& c : doc["components"]) {
    EXPECT_TRUE(c.at("name").is_string());
    EXPECT_TRUE(c.at("category").is_string());
    EXPECT_TRUE(c.at("bytes").is_number_integer());
  }
  ASSERT_EQ(doc.at("phases").size(), 3u);
  for (const auto& p : doc["phases"]) {
    EXPECT_TRUE(p.at("phase").is_string());
    EXPECT_TRUE(p.at("tensor_bytes").is_number_integer());
  }
  ASSERT_TRUE(doc.at("fit").is_array());
  for (const auto& f : doc["fit"]) {
    EXPECT_TRUE(f.at("setup").is_object());
    EXPECT_TRUE(f.at("changes").is_array());
    EXPECT_TRUE(f.at("relative_speed").is_number());
  }
  // The categories at the peak add up to the peak, less the slack.
  std::int64_t sum = 0;
  for (const auto& [k, v] : doc["categories_at_peak"].items()) sum += v.get<std::int64_t>();
  EXPECT_NEAR(static_cast<double>(sum + doc["allocator_slack_bytes"].get<std::int64_t>()),
              static_cast<double>(doc["peak_bytes"].get<std::int64_t>()), 16.0);
}

TEST(Cli, WithoutAGpuFitsIsNull) {
  const auto doc = run_json("--model gpt2");
  EXPECT_TRUE(doc["fits"].is_null());
  EXPECT_TRUE(doc["gpu"].is_null());
}

TEST(Cli, GpuMemoryAcceptsSizes) {
  const auto doc = run_json("--model gpt2 --gpu-memory 24GiB");
  EXPECT_EQ(doc["gpu"]["memory_bytes"], 24LL << 30);
}

TEST(Cli, HumanOutputSaysWhetherItFits) {
  const auto r = run("estimate --model mistral-7b-v0.1 --gpu A100-80GB");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("fits    yes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("naive"), std::string::npos);
  const auto no = run("estimate --model mistral-7b-v0.1 --gpu L4");
  EXPECT_NE(no.output.find("fits    NO"), std::string::npos) << no.output;
}

TEST(Cli, BadInputGivesClearErrors) {
  struct Case {
    const char* args;
    const char* expected;
  };
  for (const auto& c : {Case{"--model gpt5", "unknown model \"gpt5\"; built-in models:"},
                        Case{"--optimizer adam", "accepted: adamw, adamw-8bit"},
                        Case{"--dtype int8", "accepted: bf16, fp16, fp32"},
                        Case{"--method prefix", "accepted: full, lora, qlora"},
                        Case{"--attention xformers", "accepted: eager, sdpa, flash"},
                        Case{"--zero 4", "accepted: 0, 1, 2, 3, fsdp"},
                        Case{"--optimizer-impl fast", "accepted: foreach, fused, for-loop"},
                        Case{"--framework keras", "accepted: hf-trainer, torch"},
                        Case{"--gpu A200", "known: T4"},
                        Case{"--gpu-memory lots", "--gpu-memory"},
                        Case{"--batch-size 0", "--batch-size: Value 0 not in range 1 to 1000000"},
                        Case{"--seq-len 2147483647 --batch-size 2147483647", "not in range"},
                        Case{"--batch-size 1000000 --seq-len 16777216", "beyond any device"},
                        Case{"--allocator-slack nan", "nan is not a number from 0 to 1"},
                        Case{"--allocator-slack inf", "inf is not a number from 0 to 1"},
                        Case{"--gpu A100-80GB --fit --fit-limit 0", "--fit-limit"},
                        Case{"--config /", "is a folder"},
                        Case{"--method lora --lora-targets qkv", "linear modules: down_proj"},
                        Case{"--config /nonexistent/config.json", "cannot open"},
                        Case{"--fit", "--fit needs a device size"},
                        Case{"--no-such-flag", "--no-such-flag"},
                        Case{"--model gpt2 --config x.json", "excludes"}}) {
    expect_refused(c.args, c.expected);
  }
}

TEST(Cli, DumpConfigRoundTrips) {
  const auto r = run("estimate --model qwen2.5-7b --dump-config");
  ASSERT_EQ(r.status, 0);
  const auto config = nlohmann::json::parse(r.output);
  EXPECT_EQ(config["model_type"], "qwen2");
  EXPECT_EQ(config["hidden_size"], 3584);
}

TEST(Cli, ASmallRunIsPrintedInMegabytes) {
  const auto r = run("estimate --model gpt2 --method lora --seq-len 128 --gpu-memory 1GiB");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("MiB"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("0.0"), std::string::npos) << r.output;  // no "0.02 GB"
  EXPECT_NE(r.output.find("weights                    weights         248.88 MB   237.35 MiB"), std::string::npos)
      << r.output;
}

TEST(Cli, AFitWithASliverLeftIsNotRoundedToAHundredPercent) {
  // The reference case's peak is about 61.39 GB; a device 1.5 MB larger.
  const auto doc = run_json("--gpu A100-80GB");
  const auto peak = doc["peak_bytes"].get<std::int64_t>();
  const auto r = run("estimate --gpu-memory " + std::to_string(peak + 1500000) + "B");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(">99.9%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("headroom 1.50 MB"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("100%"), std::string::npos) << r.output;
  const auto no = run("estimate --gpu-memory " + std::to_string(peak - 4000000) + "B");
  EXPECT_NE(no.output.find("short by 4.00 MB"), std::string::npos) << no.output;
}

TEST(Cli, ANameUsersTypeSaysWhichBuiltInItUsed) {
  const auto r = run("estimate --model mistralai/Mistral-7B-Instruct-v0.2 --gpu A100-80GB");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("note: model \"mistralai/Mistral-7B-Instruct-v0.2\" read as the built-in mistral-7b-v0.1"),
            std::string::npos)
      << r.output;
  const auto json = run_stdout("estimate --json --model llama-2-7b-chat-hf");
  ASSERT_EQ(json.status, 0) << json.output;
  const auto doc = nlohmann::json::parse(json.output);
  EXPECT_EQ(doc["model"]["name"], "llama-2-7b");
  ASSERT_EQ(doc["model"]["assumptions"].size(), 1u);
}

TEST(Cli, SettingsFlagsChangeTheirTerms) {
  const auto lora = run_json("--model llama-3-8b --method lora");
  const auto bf16 = run_json("--model llama-3-8b --method lora --adapter-dtype bf16");
  EXPECT_EQ(bf16["setup"]["adapter_dtype"], "bf16");
  EXPECT_EQ(lora["setup"]["adapter_dtype"], "fp32");
  EXPECT_LT(bf16["peak_bytes"].get<double>(), lora["peak_bytes"].get<double>());
  const auto in_backward = run_json("--model llama-3-8b --optimizer-in-backward");
  EXPECT_EQ(in_backward["phases"].size(), 2u);
  EXPECT_EQ(in_backward["setup"]["optimizer_in_backward"], true);
  const auto nodq = run_json("--model llama-3-8b --method qlora --no-double-quant");
  EXPECT_EQ(nodq["setup"]["double_quant"], false);
  const auto paged = run_json("--model llama-3-8b --optimizer paged-adamw-8bit");
  bool found = false;
  for (const auto& c : paged["components"])
    if (c["name"] == "optimizer_states_paged") found = c["category"] == "non_torch" && c["bytes"].get<double>() > 0;
  EXPECT_TRUE(found);
  expect_refused("--adapter-dtype fp8 --method lora", "accepted: bf16, fp16, fp32");
  expect_refused("--adapter-dtype bf16", "a full fine-tune (--method full) has none");
  expect_refused("--no-double-quant --method lora", "needs --method qlora");
  expect_refused("--optimizer-in-backward --grad-accum 4", "cannot accumulate gradients");
  expect_refused("--amp --dtype fp32", "nothing to autocast");
  expect_refused("--amp --mixed-precision", "give one");
  const auto amp = run_json("--model llama-3-8b --amp");
  EXPECT_EQ(amp["setup"]["amp"], true);
  EXPECT_GT(amp["peak_bytes"].get<double>(), run_json("--model llama-3-8b")["peak_bytes"].get<double>());
}
