#include <gtest/gtest.h>

#include "oomguard/allocator_config.hpp"
#include "oomguard/config.hpp"
#include "oomguard/error.hpp"

using namespace oomguard;

TEST(ParseBytes, UnitsAreBinaryOrDecimalAsWritten) {
  EXPECT_EQ(parse_bytes("1048576"), 1048576u);
  EXPECT_EQ(parse_bytes("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_bytes("1.5GiB"), 3ull << 29);
  EXPECT_EQ(parse_bytes("20GB"), 20'000'000'000ull);
  EXPECT_EQ(parse_bytes("4g"), 4ull << 30);
  EXPECT_EQ(parse_bytes(" 2 KiB "), 2048u);
  EXPECT_EQ(parse_bytes("100B"), 100u);
}

TEST(ParseBytes, RejectsWithAMessageNamingTheInputAndTheUnits) {
  for (const char* bad : {"", "GiB", "-1GiB", "12 parsecs", "1e400", "nan", "1.2.3MiB"}) {
    try {
      parse_bytes(bad, "budget");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const config_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("budget"), std::string::npos) << what;
      EXPECT_NE(what.find("GiB"), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
    }
  }
}

TEST(ParseBytes, TooLargeSaysSoNotNonNegative) {
  try {
    (void)parse_bytes("20000000TiB", "budget");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 2^64 bytes"), std::string::npos) << e.what();
  }
}

TEST(ParseBool, AnyCase) {
  for (const char* yes : {"TRUE", "True", "true", "YES", "On", "1"}) EXPECT_TRUE(parse_bool(yes, "x")) << yes;
  for (const char* no : {"FALSE", "False", "No", "OFF", "0"}) EXPECT_FALSE(parse_bool(no, "x")) << no;
  EXPECT_THROW(parse_bool("maybe", "x"), config_error);
}

TEST(ParseBudget, BytesOrPercentOfTheDevice) {
  EXPECT_EQ(parse_budget("20GiB").resolve(80ull << 30), 20ull << 30);
  EXPECT_EQ(parse_budget("50%").resolve(80ull << 30), 40ull << 30);
  EXPECT_THROW(parse_budget("0"), config_error);
  EXPECT_THROW(parse_budget("150%"), config_error);
  EXPECT_THROW(parse_budget("%"), config_error);
}

TEST(ParseConf, SplitsEntriesInOrder) {
  const auto entries = parse_conf("budget:20GiB, mode:cpu,,report_dir:/x");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].key, "budget");
  EXPECT_EQ(entries[0].value, "20GiB");
  EXPECT_EQ(entries[1].key, "mode");
  EXPECT_EQ(entries[2].value, "/x");
  EXPECT_TRUE(parse_conf("").empty());
}

// Note [A value may hold a comma].
TEST(ParseConf, EscapedValuesRoundTripThroughJoinConf) {
  const std::vector<ConfEntry> entries{{"report_dir", "/runs/a,b:c\\d"}, {"budget", "1GiB"}, {"mode", ""}};
  const std::string text = join_conf(entries);
  EXPECT_EQ(text, "report_dir:/runs/a\\,b\\:c\\\\d,budget:1GiB,mode:");
  const auto back = parse_conf(text);
  ASSERT_EQ(back.size(), entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(back[i].key, entries[i].key);
    EXPECT_EQ(back[i].value, entries[i].value);
  }
  // Unescaped, the comma still separates: a pasted value cannot hide a key.
  EXPECT_EQ(parse_conf("budget:1GiB,report_dir:/etc").size(), 2u);
  try {
    parse_conf("report_dir:/x\\");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("lone"), std::string::npos) << e.what();
  }
}

TEST(ParseConf, MalformedAndDuplicateEntriesAreNamed) {
  try {
    parse_conf("budget:1GiB,oops");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("'oops'"), std::string::npos);
  }
  try {
    parse_conf("budget:1GiB,budget:2GiB");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("twice"), std::string::npos);
  }
  EXPECT_THROW(parse_conf(":x"), config_error);
}

TEST(AllocatorConfig, UnknownKeysListTheAcceptedOnesWhenStrict) {
  const auto entries = parse_conf("budget:1GiB,bugdet:2GiB");
  try {
    parse_allocator_config(entries, /*strict=*/true);
    FAIL();
  } catch (const config_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'bugdet'"), std::string::npos) << what;
    EXPECT_NE(what.find("limit_activations"), std::string::npos) << what;
  }
  // Not strict: the other layers' keys are left alone.
  const AllocatorConfig config = parse_allocator_config(entries, /*strict=*/false);
  EXPECT_TRUE(config.has_budget);
  EXPECT_EQ(config.budget.bytes, 1ull << 30);
}

TEST(AllocatorConfig, ParsesEveryKey) {
  const auto config = parse_allocator_config(
      parse_conf("upstream:simulated,capacity:2GiB,devices:3,per_stream_pools:false,limit_activations:1GiB"), true);
  EXPECT_EQ(config.upstream, "simulated");
  EXPECT_EQ(config.simulated.capacity_bytes, 2ull << 30);
  EXPECT_EQ(config.simulated.devices, 3);
  EXPECT_FALSE(config.per_stream_pools);
  EXPECT_EQ(config.category_limits[index(Category::activations)], 1ull << 30);
  EXPECT_THROW(parse_allocator_config(parse_conf("upstream:rocm"), true), config_error);
  EXPECT_THROW(parse_allocator_config(parse_conf("devices:0"), true), config_error);
  EXPECT_THROW(parse_allocator_config(parse_conf("per_stream_pools:maybe"), true), config_error);
}

TEST(Names, CategoriesAndPhasesRoundTrip) {
  for (std::size_t i = 0; i < kNumCategories; ++i) {
    EXPECT_EQ(index(parse_category(kCategoryNames[i])), i);
  }
  for (std::size_t i = 0; i < kNumPhases; ++i) EXPECT_EQ(index(parse_phase(kPhaseNames[i])), i);
  try {
    parse_category("activation");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("activations"), std::string::npos);
  }
}
