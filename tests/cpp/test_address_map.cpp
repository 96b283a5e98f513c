// The Ledger's address map against std::unordered_map: random churn with
// clustered addresses (runs that wrap around the table and backward shifts
// across the wrap), address 0, growth, and iteration.
#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

#include "detail/address_map.hpp"

using oomguard::detail::AddressMap;

namespace {
struct Value {
  std::uint64_t payload = 0;
};

void expect_same(AddressMap<Value>& map, const std::unordered_map<std::uintptr_t, std::uint64_t>& truth) {
  ASSERT_EQ(map.size(), truth.size());
  std::size_t seen = 0;
  map.for_each([&](std::uintptr_t key, const Value& v) {
    ++seen;
    auto it = truth.find(key);
    ASSERT_NE(it, truth.end()) << key;
    EXPECT_EQ(it->second, v.payload) << key;
  });
  EXPECT_EQ(seen, truth.size());
  for (const auto& [key, payload] : truth) {
    Value* v = map.find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(v->payload, payload);
  }
}
}  // namespace

TEST(AddressMap, InsertFindEraseAndAddressZero) {
  AddressMap<Value> map;
  EXPECT_EQ(map.find(0x1000), nullptr);
  EXPECT_EQ(map.find(0), nullptr);
  auto [a, inserted_a] = map.try_emplace(0x1000, Value{1});
  EXPECT_TRUE(inserted_a);
  auto [again, inserted_again] = map.try_emplace(0x1000, Value{2});
  EXPECT_FALSE(inserted_again);
  EXPECT_EQ(again, a);
  EXPECT_EQ(again->payload, 1u);
  auto [zero, inserted_zero] = map.try_emplace(0, Value{3});
  EXPECT_TRUE(inserted_zero);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(map.find(0)->payload, 3u);
  map.erase(zero);
  EXPECT_EQ(map.find(0), nullptr);
  map.erase(map.find(0x1000));
  EXPECT_EQ(map.find(0x1000), nullptr);
  EXPECT_EQ(map.size(), 0u);
}

TEST(AddressMap, MatchesAReferenceMapUnderChurn) {
  for (const std::uintptr_t stride : {std::uintptr_t{16}, std::uintptr_t{512}, std::uintptr_t{2} << 20}) {
    AddressMap<Value> map;
    std::unordered_map<std::uintptr_t, std::uint64_t> truth;
    std::mt19937_64 rng(stride);
    // Few distinct addresses, so live ones collide and cluster.
    const std::uintptr_t universe = 3000;
    for (int i = 0; i < 200000; ++i) {
      const std::uintptr_t key = (rng() % universe) * stride;  // includes 0
      if (rng() % 2 == 0) {
        const std::uint64_t payload = rng();
        auto [v, inserted] = map.try_emplace(key, Value{payload});
        EXPECT_EQ(inserted, truth.emplace(key, payload).second);
        EXPECT_EQ(v->payload, truth.at(key));
      } else if (Value* v = map.find(key); v != nullptr) {
        ASSERT_EQ(truth.erase(key), 1u) << key;
        map.erase(v);
      } else {
        EXPECT_EQ(truth.count(key), 0u) << key;
      }
      if (i % 20000 == 0) expect_same(map, truth);
    }
    expect_same(map, truth);
    map.clear();
    EXPECT_EQ(map.size(), 0u);
    for (const auto& [key, payload] : truth) EXPECT_EQ(map.find(key), nullptr);
  }
}

TEST(AddressMap, ShrinksAfterASpikeAndKeepsItsEntries) {
  AddressMap<Value> map;
  std::unordered_map<std::uintptr_t, std::uint64_t> truth;
  for (std::uintptr_t i = 1; i <= 10000; ++i) {
    map.try_emplace(i << 8, Value{i});
    truth.emplace(i << 8, i);
  }
  const std::size_t at_peak = map.capacity();
  EXPECT_GE(at_peak, 2 * map.size());
  for (std::uintptr_t i = 1; i <= 9900; ++i) {
    map.erase(map.find(i << 8));
    truth.erase(i << 8);
  }
  EXPECT_LE(map.capacity(), 8 * map.size());
  EXPECT_LT(map.capacity(), at_peak / 16);
  expect_same(map, truth);
}
