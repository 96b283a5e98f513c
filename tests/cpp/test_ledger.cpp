#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>
#include <vector>

#include "oomguard/ledger.hpp"

using namespace oomguard;

namespace {
Tag tag(Category c, Phase p = Phase::forward, std::int64_t step = 0) { return Tag{c, p, step}; }
std::int64_t at(const CategoryBytes& b, Category c) { return b[index(c)]; }
}  // namespace

TEST(Ledger, RecordReleaseAndPeaks) {
  Ledger ledger;
  ledger.record(0x1000, 100, 0, 0, tag(Category::weights));
  ledger.record(0x2000, 50, 0, 0, tag(Category::activations));
  ledger.record(0x3000, 70, 1, 0, tag(Category::activations));
  auto d0 = ledger.device_stats(0);
  EXPECT_EQ(at(d0.current, Category::weights), 100);
  EXPECT_EQ(at(d0.current, Category::activations), 50);
  EXPECT_EQ(d0.allocated, 150);
  EXPECT_EQ(d0.live_allocations, 2);
  EXPECT_EQ(ledger.device_stats(1).allocated, 70);

  const auto released = ledger.release(0x2000);
  ASSERT_TRUE(released.has_value());
  EXPECT_EQ(released->size, 50u);
  EXPECT_EQ(released->category, Category::activations);
  d0 = ledger.device_stats(0);
  EXPECT_EQ(d0.allocated, 100);
  EXPECT_EQ(d0.peak_allocated, 150);
  EXPECT_EQ(at(d0.peak, Category::activations), 50);
  EXPECT_EQ(ledger.stats().size(), 2u);
}

TEST(Ledger, UnknownFreeIsCountedAndChangesNothing) {
  Ledger ledger;
  ledger.record(0x1000, 10, 0, 0, tag(Category::weights));
  EXPECT_FALSE(ledger.release(0x9999).has_value());
  EXPECT_FALSE(ledger.release(0x1000 + 1).has_value());
  EXPECT_EQ(ledger.device_stats(0).allocated, 10);
  EXPECT_EQ(ledger.counters().unknown_frees, 2u);
  ASSERT_TRUE(ledger.release(0x1000));
  EXPECT_FALSE(ledger.release(0x1000).has_value());  // double free
  EXPECT_EQ(ledger.counters().unknown_frees, 3u);
}

TEST(Ledger, RecordOverALiveAddressReplacesIt) {
  Ledger ledger;
  ledger.record(0x1000, 10, 0, 0, tag(Category::weights));
  ledger.record(0x1000, 30, 0, 0, tag(Category::gradients));
  const auto d = ledger.device_stats(0);
  EXPECT_EQ(at(d.current, Category::weights), 0);
  EXPECT_EQ(at(d.current, Category::gradients), 30);
  EXPECT_EQ(d.live_allocations, 1);
  EXPECT_EQ(ledger.counters().replaced_records, 1u);
}

TEST(Ledger, RetagMovesBytesAndRaisesTheNewCategorysPeak) {
  Ledger ledger;
  ledger.record(0x1000, 64, 0, 0, tag(Category::activations));
  EXPECT_TRUE(ledger.retag(0x1000, Category::gradients));
  const auto d = ledger.device_stats(0);
  EXPECT_EQ(at(d.current, Category::activations), 0);
  EXPECT_EQ(at(d.current, Category::gradients), 64);
  EXPECT_EQ(at(d.peak, Category::gradients), 64);
  EXPECT_EQ(d.allocated, 64);
  EXPECT_EQ(d.peak_allocated, 64);  // a retag is not an allocation
  EXPECT_FALSE(ledger.retag(0x2000, Category::weights));
  EXPECT_EQ(ledger.find(0x1000)->category, Category::gradients);
}

// Note [The breakdown at the peak]: the composition when the total was
// highest, not each category's own peak, with the tag that reached it.
TEST(Ledger, PeakBreakdownIsTheCompositionAtTheMaximum) {
  Ledger ledger;
  ledger.begin_step(3);
  ledger.record(0x1000, 100, 0, 0, tag(Category::activations, Phase::forward, 3));  // A
  ledger.record(0x2000, 50, 0, 0, tag(Category::weights, Phase::backward, 4));      // B: the peak, 150
  ledger.release(0x1000);
  ledger.record(0x3000, 80, 0, 0, tag(Category::temporary, Phase::optimizer, 5));  // C: 130, no new peak
  ledger.begin_step(6);  // step boundaries do not move the run's peak
  const auto d = ledger.device_stats(0);
  EXPECT_EQ(d.peak_allocated, 150);
  EXPECT_EQ(at(d.peak_breakdown, Category::activations), 100);
  EXPECT_EQ(at(d.peak_breakdown, Category::weights), 50);
  EXPECT_EQ(at(d.peak_breakdown, Category::temporary), 0);  // its own peak is 80, reached later
  EXPECT_EQ(at(d.peak, Category::temporary), 80);
  std::int64_t sum = 0;
  for (auto b : d.peak_breakdown) sum += b;
  EXPECT_EQ(sum, d.peak_allocated);
  EXPECT_EQ(d.peak_step, 4);
  EXPECT_EQ(d.peak_phase, Phase::backward);
  EXPECT_GT(d.peak_time_ns, 0);
  // A retag of a block live at the peak renames its bytes there too; one of
  // a block recorded after the peak does not touch the breakdown.
  EXPECT_TRUE(ledger.retag(0x2000, Category::adapters));
  EXPECT_TRUE(ledger.retag(0x3000, Category::checkpoint));
  const auto retagged = ledger.device_stats(0);
  EXPECT_EQ(at(retagged.peak_breakdown, Category::weights), 0);
  EXPECT_EQ(at(retagged.peak_breakdown, Category::adapters), 50);
  EXPECT_EQ(at(retagged.peak_breakdown, Category::activations), 100);
  EXPECT_EQ(at(retagged.peak_breakdown, Category::checkpoint), 0);
  EXPECT_TRUE(ledger.retag(0x3000, Category::temporary));
  // A new maximum replaces it.
  ledger.record(0x4000, 40, 0, 0, tag(Category::gradients, Phase::backward, 6));  // 170
  const auto e = ledger.device_stats(0);
  EXPECT_EQ(e.peak_allocated, 170);
  EXPECT_EQ(at(e.peak_breakdown, Category::adapters), 50);
  EXPECT_EQ(at(e.peak_breakdown, Category::temporary), 80);
  EXPECT_EQ(at(e.peak_breakdown, Category::gradients), 40);
  EXPECT_EQ(at(e.peak_breakdown, Category::activations), 0);
  EXPECT_EQ(e.peak_step, 6);
  ledger.reset();
  const auto r = ledger.device_stats(0);
  EXPECT_EQ(r.peak_breakdown, CategoryBytes{});
  EXPECT_EQ(r.peak_step, 0);
  EXPECT_EQ(r.peak_phase, Phase::idle);
  set_process_step(0);
}

// One writer: every new maximum's breakdown sums to it exactly.
TEST(Ledger, PeakBreakdownSumsToThePeakWithOneWriter) {
  Ledger ledger;
  std::mt19937_64 rng(7);
  std::vector<std::uintptr_t> live;
  for (int i = 0; i < 5000; ++i) {
    if (rng() % 3 != 0 || live.empty()) {
      const auto c = static_cast<Category>(rng() % kNumCategories);
      const std::uintptr_t address = 0x100000 + static_cast<std::uintptr_t>(i) * 16;
      ledger.record(address, 1 + rng() % 4096, 0, 0, tag(c, Phase::forward, i));
      live.push_back(address);
    } else {
      const auto k = rng() % live.size();
      ledger.release(live[k]);
      live.erase(live.begin() + static_cast<long>(k));
    }
    const auto d = ledger.device_stats(0);
    std::int64_t sum = 0;
    for (auto b : d.peak_breakdown) sum += b;
    ASSERT_EQ(sum, d.peak_allocated) << "after event " << i;
  }
}

TEST(Ledger, StepPeaksCloseAtEachBoundary) {
  Ledger ledger;
  ledger.begin_step(1);
  ledger.record(0x1000, 100, 0, 0, tag(Category::activations, Phase::forward, 1));
  ledger.release(0x1000);
  ledger.begin_step(2);
  ledger.record(0x2000, 300, 0, 0, tag(Category::activations, Phase::forward, 2));
  ledger.record(0x3000, 10, 0, 0, tag(Category::weights, Phase::forward, 2));
  ledger.release(0x2000);
  const auto peaks = ledger.step_peaks();
  ASSERT_GE(peaks.size(), 2u);
  const StepPeak& step1 = peaks[peaks.size() - 2];
  const StepPeak& step2 = peaks.back();
  EXPECT_EQ(step1.step, 1);
  EXPECT_EQ(step1.peak_allocated, 100);
  EXPECT_EQ(step2.step, 2);
  EXPECT_EQ(step2.peak_allocated, 310);
  EXPECT_EQ(at(step2.peak_by_category, Category::activations), 300);
  // One entry asked for, as the guard does at each boundary: the same figures.
  ASSERT_TRUE(ledger.step_peak(1, 0).has_value());
  EXPECT_EQ(ledger.step_peak(1, 0)->peak_allocated, 100);
  ASSERT_TRUE(ledger.step_peak(2, 0).has_value());  // the open step
  EXPECT_EQ(ledger.step_peak(2, 0)->peak_allocated, 310);
  EXPECT_EQ(ledger.open_step_peak(0)->peak_allocated, 310);
  EXPECT_FALSE(ledger.step_peak(3, 0).has_value());
  EXPECT_FALSE(ledger.step_peak(1, 1).has_value());  // a device with no traffic
  EXPECT_FALSE(ledger.open_step_peak(1).has_value());
  EXPECT_EQ(process_step(), 2);
  set_process_step(0);
}

TEST(Ledger, StepHistoryKeepsTheNewestStepsOnly) {
  Ledger ledger;
  const std::int64_t steps = static_cast<std::int64_t>(Ledger::kStepHistory) + 10;
  for (std::int64_t step = 1; step <= steps; ++step) {
    ledger.begin_step(step);
    ledger.record(0x1000, static_cast<std::uint64_t>(step), 0, 0, tag(Category::activations, Phase::forward, step));
    ledger.release(0x1000);
  }
  ledger.begin_step(steps + 1);
  EXPECT_EQ(ledger.step_peaks().size(), Ledger::kStepHistory + 1);  // the history, then the open step
  EXPECT_FALSE(ledger.step_peak(10, 0).has_value());  // dropped, oldest first
  EXPECT_EQ(ledger.step_peak(11, 0)->peak_allocated, 11);
  EXPECT_EQ(ledger.step_peak(steps, 0)->peak_allocated, steps);
  set_process_step(0);
}

TEST(Ledger, AStepKeepsWhatWasLiveWhenItClosed) {
  Ledger ledger;
  ledger.begin_step(1);
  ledger.record(0x1000, 100, 0, 0, tag(Category::weights, Phase::forward, 1));
  ledger.record(0x2000, 50, 0, 0, tag(Category::activations, Phase::forward, 1));
  ledger.retag(0x2000, Category::gradients);  // the boundary's census
  ledger.begin_step(2);
  ledger.release(0x2000);
  ledger.record(0x3000, 7, 0, 0, tag(Category::optimizer, Phase::optimizer, 2));
  const auto peaks = ledger.step_peaks();
  ASSERT_GE(peaks.size(), 2u);
  const StepPeak& closed = peaks[peaks.size() - 2];
  const StepPeak& open = peaks.back();
  EXPECT_EQ(closed.step, 1);
  EXPECT_EQ(at(closed.at_end, Category::weights), 100);
  EXPECT_EQ(at(closed.at_end, Category::gradients), 50);
  EXPECT_EQ(at(closed.at_end, Category::activations), 0);
  EXPECT_EQ(open.step, 2);  // the open step: what is live now
  EXPECT_EQ(at(open.at_end, Category::gradients), 0);
  EXPECT_EQ(at(open.at_end, Category::optimizer), 7);
  set_process_step(0);
}

TEST(Ledger, EventRingIsBoundedOrderedAndRecent) {
  Ledger ledger(/*event_capacity=*/Ledger::kShards * 4);
  for (std::uintptr_t i = 1; i <= 5000; ++i) {
    ledger.record(i << 12, i, 0, 0, tag(Category::temporary));
    ledger.release(i << 12);
  }
  const auto events = ledger.recent_events();
  EXPECT_LE(events.size(), Ledger::kShards * 4);
  EXPECT_GT(events.size(), 0u);
  for (std::size_t i = 1; i < events.size(); ++i) EXPECT_LE(events[i - 1].time_ns, events[i].time_ns);
  // The last event of all is the last free.
  EXPECT_EQ(events.back().kind, EventKind::free);
  EXPECT_EQ(events.back().address, std::uintptr_t{5000} << 12);
}

// Note [Event clock]: thousands of events fit in one tick of the coarse
// clock, and their addresses spread over every shard; the merged events must
// still come back in the order this thread made them.
TEST(Ledger, EventsKeepAThreadsOrderAcrossShardsWithinATick) {
  Ledger ledger;
  constexpr std::uintptr_t kCount = 2000;
  for (std::uintptr_t i = 1; i <= kCount; ++i) ledger.record(i << 12, i, 0, 0, tag(Category::activations));
  for (std::uintptr_t i = kCount; i >= 1; --i) ledger.release(i << 12);
  const auto events = ledger.recent_events();
  ASSERT_EQ(events.size(), 2 * kCount);
  for (std::uintptr_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(events[i].kind, EventKind::alloc);
    EXPECT_EQ(events[i].address, (i + 1) << 12);
    EXPECT_EQ(events[kCount + i].kind, EventKind::free);
    EXPECT_EQ(events[kCount + i].address, (kCount - i) << 12);
  }
  for (std::size_t i = 1; i < events.size(); ++i) EXPECT_LT(events[i - 1].time_ns, events[i].time_ns);
}

// A thread that frees and hands over (autograd's backward thread, then the
// main thread's optimizer step) must not see its frees sorted after the
// next thread's allocations, though the two threads share no address.
TEST(Ledger, EventsKeepOrderAcrossAHandOverBetweenThreads) {
  Ledger ledger;
  for (int round = 0; round < 20; ++round) {
    const std::uintptr_t base = static_cast<std::uintptr_t>(round + 1) << 32;
    std::thread backward([&] {
      for (std::uintptr_t i = 0; i < 100; ++i) ledger.record(base + (i << 12), 64, 0, 0, tag(Category::activations));
      for (std::uintptr_t i = 0; i < 100; ++i) ledger.release(base + (i << 12));
    });
    backward.join();
    const std::uintptr_t optimizer = base + (std::uintptr_t{1000} << 12);
    for (std::uintptr_t i = 0; i < 100; ++i) ledger.record(optimizer + (i << 12), 64, 0, 0, tag(Category::optimizer));
    for (std::uintptr_t i = 0; i < 100; ++i) ledger.release(optimizer + (i << 12));
  }
  const auto events = ledger.recent_events();
  ASSERT_EQ(events.size(), 20u * 400u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    // Each round: 100 allocations and 100 frees of activations, then of optimizer state.
    const std::size_t in_round = i % 400;
    EXPECT_EQ(events[i].category, in_round < 200 ? Category::activations : Category::optimizer) << i;
    EXPECT_EQ(events[i].kind, in_round % 200 < 100 ? EventKind::alloc : EventKind::free) << i;
  }
}

TEST(Ledger, SegmentsTrackReservedWithPeak) {
  Ledger ledger;
  ledger.segment_alloc(0, 1 << 20, 0x10000);
  ledger.segment_alloc(0, 2 << 20, 0x20000);
  ledger.segment_free(0, 1 << 20, 0x10000);
  const auto d = ledger.device_stats(0);
  EXPECT_EQ(d.reserved, 2 << 20);
  EXPECT_EQ(d.peak_reserved, 3 << 20);
}

TEST(Ledger, CpuDeviceHasItsOwnSlotAndBadDevicesAreRejected) {
  Ledger ledger;
  ledger.record(0x1000, 8, kCpuDevice, 0, tag(Category::weights));
  EXPECT_EQ(ledger.device_stats(kCpuDevice).allocated, 8);
  EXPECT_EQ(ledger.device_stats(0).allocated, 0);
  EXPECT_ANY_THROW(ledger.record(0x2000, 8, kMaxDevices, 0, tag(Category::weights)));
  EXPECT_ANY_THROW(ledger.record(0x2000, 8, -2, 0, tag(Category::weights)));
  EXPECT_EQ(ledger.counters().allocations, 1u);
}

// Many threads allocate, free and retag; afterwards every total equals the
// ground truth to the byte, computed independently from what each thread did.
TEST(Ledger, ExactUnderConcurrency) {
  Ledger ledger;
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  struct Truth {
    std::map<std::uintptr_t, std::pair<std::uint64_t, Category>> live;
    std::uint64_t allocations = 0;
  };
  std::vector<Truth> truth(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      Truth& mine = truth[t];
      std::uintptr_t next = (std::uintptr_t{1} << 40) * (t + 1);
      for (int i = 0; i < kOps; ++i) {
        const auto roll = rng() % 10;
        if (roll < 5 || mine.live.empty()) {
          const std::uint64_t size = 1 + rng() % 4096;
          const auto c = static_cast<Category>(rng() % kNumCategories);
          const int device = static_cast<int>(rng() % 2);
          next += 4096;
          ledger.record(next, size, device, 0, Tag{c, Phase::forward, 0});
          mine.live[next] = {size, c};
          ++mine.allocations;
        } else {
          auto it = mine.live.begin();
          std::advance(it, static_cast<long>(rng() % mine.live.size()));
          if (roll < 8) {
            ASSERT_TRUE(ledger.release(it->first).has_value());
            mine.live.erase(it);
          } else {
            const auto c = static_cast<Category>(rng() % kNumCategories);
            ASSERT_TRUE(ledger.retag(it->first, c));
            it->second.second = c;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  CategoryBytes expected[2]{};
  std::uint64_t expected_allocations = 0;
  std::size_t expected_live = 0;
  for (const Truth& mine : truth) {
    expected_allocations += mine.allocations;
    expected_live += mine.live.size();
  }
  // Ground truth from the threads' own books: device comes from the Ledger's
  // record, size and category from the thread.
  for (const Truth& mine : truth) {
    for (const auto& [address, entry] : mine.live) {
      const auto rec = ledger.find(address);
      ASSERT_TRUE(rec.has_value());
      ASSERT_EQ(rec->size, entry.first);
      ASSERT_EQ(rec->category, entry.second);
      expected[rec->device][index(entry.second)] += static_cast<std::int64_t>(entry.first);
    }
  }
  std::int64_t live_total = 0;
  for (int device = 0; device < 2; ++device) {
    const auto d = ledger.device_stats(device);
    EXPECT_EQ(d.current, expected[device]) << "device " << device;
    std::int64_t sum = 0;
    for (auto b : expected[device]) sum += b;
    EXPECT_EQ(d.allocated, sum);
    EXPECT_GE(d.peak_allocated, d.allocated);
    live_total += d.live_allocations;
  }
  EXPECT_EQ(static_cast<std::size_t>(live_total), expected_live);
  EXPECT_EQ(ledger.live_allocations().size(), expected_live);
  EXPECT_EQ(ledger.counters().allocations, expected_allocations);
}

// A peak is exact when one thread's allocations are the only ones in flight.
TEST(Ledger, PeakIsTheMaximumOfTheRunningTotal) {
  Ledger ledger;
  std::mt19937_64 rng(42);
  std::vector<std::pair<std::uintptr_t, std::uint64_t>> live;
  std::int64_t total = 0;
  std::int64_t peak = 0;
  for (int i = 0; i < 10000; ++i) {
    if (rng() % 3 != 0 || live.empty()) {
      const std::uint64_t size = 1 + rng() % 100000;
      const std::uintptr_t address = 0x100000 + static_cast<std::uintptr_t>(i) * 16;
      ledger.record(address, size, 0, 0, Tag{Category::activations, Phase::forward, 0});
      live.emplace_back(address, size);
      total += static_cast<std::int64_t>(size);
      peak = std::max(peak, total);
    } else {
      const auto k = rng() % live.size();
      ledger.release(live[k].first);
      total -= static_cast<std::int64_t>(live[k].second);
      live.erase(live.begin() + static_cast<long>(k));
    }
  }
  EXPECT_EQ(ledger.device_stats(0).peak_allocated, peak);
  EXPECT_EQ(ledger.device_stats(0).allocated, total);
}
