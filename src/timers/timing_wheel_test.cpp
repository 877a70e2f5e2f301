#include "timers/timing_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace herald::timers {
namespace {

using namespace std::chrono_literals;
using Clock = TimingWheel::Clock;

// A fixed origin: the tests drive time by hand and never read the clock.
const Clock::time_point t0 = Clock::time_point{} + 1000h;

TEST(TimingWheel, FiresAtOrAfterTheDeadlineNeverBefore) {
  TimingWheel wheel(10ms, 64, t0);
  int fired = 0;
  wheel.schedule(t0 + 50ms, [&] { ++fired; });
  EXPECT_EQ(wheel.advance(t0 + 49ms), 0u);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(wheel.advance(t0 + 50ms), 1u);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(wheel.advance(t0 + 500ms), 0u);
  EXPECT_EQ(fired, 1);
}

TEST(TimingWheel, RoundsADeadlineUpToTheNextTick) {
  TimingWheel wheel(10ms, 64, t0);
  int fired = 0;
  wheel.schedule(t0 + 41ms, [&] { ++fired; });
  wheel.advance(t0 + 41ms);  // past the deadline but inside tick 4
  EXPECT_EQ(fired, 0);
  wheel.advance(t0 + 49'999us);
  EXPECT_EQ(fired, 0);
  wheel.advance(t0 + 50ms);
  EXPECT_EQ(fired, 1);
}

TEST(TimingWheel, PastDeadlineFiresOnTheNextAdvance) {
  TimingWheel wheel(10ms, 64, t0);
  wheel.advance(t0 + 1s);
  std::vector<int> order;
  wheel.schedule(t0 + 500ms, [&] { order.push_back(1); });
  wheel.schedule(t0, [&] { order.push_back(2); });
  wheel.schedule(t0 + 1s, [&] { order.push_back(3); });  // == now(): due as well
  EXPECT_EQ(wheel.advance(t0 + 1s), 3u);                 // same time: no tick passes, still fires
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(TimingWheel, NonPositiveDelayFiresOnTheNextAdvance) {
  TimingWheel wheel(10ms, 64, t0);
  wheel.advance(t0 + 15ms);  // mid-tick
  int fired = 0;
  wheel.schedule_after(0ms, [&] { ++fired; });
  wheel.schedule_after(-5ms, [&] { ++fired; });
  EXPECT_EQ(wheel.advance(t0 + 15ms), 2u);
  EXPECT_EQ(fired, 2);
}

TEST(TimingWheel, ScheduleAfterIsRelativeToTheLastAdvance) {
  TimingWheel wheel(10ms, 64, t0);
  wheel.advance(t0 + 100ms);
  int fired = 0;
  wheel.schedule_after(30ms, [&] { ++fired; });
  wheel.advance(t0 + 129ms);
  EXPECT_EQ(fired, 0);
  wheel.advance(t0 + 130ms);
  EXPECT_EQ(fired, 1);
}

TEST(TimingWheel, CancelPreventsFiringAndReturnsFalseTheSecondTime) {
  TimingWheel wheel(10ms, 64, t0);
  int fired = 0;
  const TimerId id = wheel.schedule(t0 + 20ms, [&] { ++fired; });
  EXPECT_TRUE(wheel.cancel(id));
  EXPECT_FALSE(wheel.cancel(id));
  EXPECT_EQ(wheel.advance(t0 + 1s), 0u);
  EXPECT_EQ(fired, 0);
}

TEST(TimingWheel, CancelDestroysTheCallbackAndItsCaptures) {
  TimingWheel wheel(10ms, 64, t0);
  auto token = std::make_shared<int>(7);
  const TimerId id = wheel.schedule(t0 + 20ms, [token] {});
  EXPECT_EQ(token.use_count(), 2);
  wheel.cancel(id);
  EXPECT_EQ(token.use_count(), 1);
}

TEST(TimingWheel, CancelOfAFiredTimerReturnsFalse) {
  TimingWheel wheel(10ms, 64, t0);
  const TimerId id = wheel.schedule(t0 + 10ms, [] {});
  wheel.advance(t0 + 10ms);
  EXPECT_FALSE(wheel.cancel(id));
}

TEST(TimingWheel, StaleIdAfterFiringCannotCancelAReusedNode) {
  TimingWheel wheel(10ms, 64, t0);
  const TimerId old_id = wheel.schedule(t0 + 10ms, [] {});
  wheel.advance(t0 + 10ms);
  int fired = 0;
  const TimerId new_id = wheel.schedule(t0 + 20ms, [&] { ++fired; });
  ASSERT_EQ(new_id.slot, old_id.slot);  // the freed node is reused...
  EXPECT_NE(new_id.generation, old_id.generation);  // ...under a new generation
  EXPECT_FALSE(wheel.cancel(old_id));
  wheel.advance(t0 + 20ms);
  EXPECT_EQ(fired, 1);
}

TEST(TimingWheel, DefaultAndOutOfRangeIdsCancelNothing) {
  TimingWheel wheel(10ms, 64, t0);
  wheel.schedule(t0 + 10ms, [] {});
  EXPECT_FALSE(TimerId{}.valid());
  EXPECT_FALSE(wheel.cancel(TimerId{}));
  EXPECT_FALSE(wheel.cancel(TimerId{12345, 1}));
  EXPECT_FALSE(wheel.cancel(TimerId{0x8000'0001u, 1}));  // would name a list head internally
  EXPECT_EQ(wheel.pending(), 1u);
}

TEST(TimingWheel, DelaysLongerThanARevolutionFireOnTime) {
  TimingWheel wheel(10ms, 8, t0);  // one revolution = 80 ms
  std::vector<Clock::time_point> fired_at;
  Clock::time_point now = t0;
  wheel.schedule(t0 + 250ms, [&] { fired_at.push_back(now); });  // three rounds and a bit
  wheel.schedule(t0 + 80ms, [&] { fired_at.push_back(now); });   // exactly one revolution
  for (; now <= t0 + 400ms; now += 10ms) wheel.advance(now);
  EXPECT_EQ(fired_at, (std::vector<Clock::time_point>{t0 + 80ms, t0 + 250ms}));
}

TEST(TimingWheel, ManyTimersInOneSlotFireInDeadlineThenScheduleOrder) {
  TimingWheel wheel(10ms, 4, t0);
  std::vector<int> order;
  // Ticks 9, 1, 5, 1, 5 all hash to slot 1 of 4.
  wheel.schedule(t0 + 90ms, [&] { order.push_back(90); });
  for (int i = 0; i < 100; ++i) wheel.schedule(t0 + 10ms, [&order, i] { order.push_back(i); });
  wheel.schedule(t0 + 50ms, [&] { order.push_back(50); });
  wheel.schedule(t0 + 5ms, [&] { order.push_back(100); });  // rounds up to tick 1, after the first 100
  wheel.schedule(t0 + 50ms, [&] { order.push_back(51); });
  EXPECT_EQ(wheel.advance(t0 + 10ms), 101u);
  std::vector<int> expected;
  for (int i = 0; i <= 100; ++i) expected.push_back(i);
  EXPECT_EQ(order, expected);
  order.clear();
  EXPECT_EQ(wheel.advance(t0 + 100ms), 3u);
  EXPECT_EQ(order, (std::vector<int>{50, 51, 90}));
}

TEST(TimingWheel, AGapOfManyRevolutionsFiresEverythingDueInDeadlineOrder) {
  TimingWheel wheel(10ms, 8, t0);
  std::vector<int> order;
  wheel.schedule(t0 + 1000ms, [&] { order.push_back(1000); });
  wheel.schedule(t0 + 30ms, [&] { order.push_back(30); });
  wheel.schedule(t0 + 710ms, [&] { order.push_back(710); });
  wheel.schedule(t0 + 30ms, [&] { order.push_back(31); });
  wheel.schedule(t0 + 20s, [&] { order.push_back(20000); });  // not due yet
  EXPECT_EQ(wheel.advance(t0 + 10s), 4u);
  EXPECT_EQ(order, (std::vector<int>{30, 31, 710, 1000}));
  EXPECT_EQ(wheel.pending(), 1u);
  EXPECT_EQ(wheel.advance(t0 + 19'990ms), 0u);
  EXPECT_EQ(wheel.advance(t0 + 20s), 1u);
}

TEST(TimingWheel, ACallbackSchedulingWithZeroDelayRunsAtTheNextAdvanceNotTheSameOne) {
  TimingWheel wheel(10ms, 64, t0);
  int runs = 0;
  std::function<void()> rearm = [&] {
    ++runs;
    wheel.schedule_after(0ms, [&] { rearm(); });
  };
  wheel.schedule(t0 + 10ms, [&] { rearm(); });
  EXPECT_EQ(wheel.advance(t0 + 10ms), 1u);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wheel.pending(), 1u);
  EXPECT_EQ(wheel.advance(t0 + 10ms), 1u);
  EXPECT_EQ(runs, 2);
}

TEST(TimingWheel, ACallbackCanRearmItselfPeriodically) {
  TimingWheel wheel(10ms, 16, t0);
  std::vector<Clock::time_point> runs;
  std::function<void()> beat = [&] {
    runs.push_back(wheel.now());
    wheel.schedule_after(30ms, [&] { beat(); });
  };
  wheel.schedule_after(30ms, [&] { beat(); });
  for (auto now = t0; now <= t0 + 100ms; now += 10ms) wheel.advance(now);
  EXPECT_EQ(runs, (std::vector<Clock::time_point>{t0 + 30ms, t0 + 60ms, t0 + 90ms}));
}

TEST(TimingWheel, ACallbackSchedulingForALaterTickInTheSameGapWaitsForTheNextAdvance) {
  TimingWheel wheel(10ms, 64, t0);
  std::vector<int> order;
  wheel.schedule(t0 + 10ms, [&] {
    // now() is already t0 + 100ms: 20 ms later is a fresh deadline, not a tick of this gap.
    wheel.schedule_after(20ms, [&] { order.push_back(2); });
    wheel.schedule(t0 + 50ms, [&] { order.push_back(3); });  // <= now(): next advance
    order.push_back(1);
  });
  EXPECT_EQ(wheel.advance(t0 + 100ms), 1u);
  EXPECT_EQ(wheel.advance(t0 + 110ms), 1u);
  EXPECT_EQ(wheel.advance(t0 + 120ms), 1u);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 2}));
}

TEST(TimingWheel, CallbacksCanCancelOtherTimersDueInTheSameAdvance) {
  TimingWheel wheel(10ms, 64, t0);
  std::vector<int> order;
  TimerId second, later;
  wheel.schedule(t0 + 10ms, [&] {
    order.push_back(1);
    EXPECT_TRUE(wheel.cancel(second));
    EXPECT_TRUE(wheel.cancel(later));
  });
  second = wheel.schedule(t0 + 10ms, [&] { order.push_back(2); });
  wheel.schedule(t0 + 20ms, [&] { order.push_back(3); });
  later = wheel.schedule(t0 + 30ms, [&] { order.push_back(4); });
  EXPECT_EQ(wheel.advance(t0 + 50ms), 2u);
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_EQ(wheel.pending(), 0u);
}

TEST(TimingWheel, ACallbackCancellingItsOwnIdGetsFalse) {
  TimingWheel wheel(10ms, 64, t0);
  TimerId self;
  bool cancelled = true;
  self = wheel.schedule(t0 + 10ms, [&] { cancelled = wheel.cancel(self); });
  wheel.advance(t0 + 10ms);
  EXPECT_FALSE(cancelled);
}

TEST(TimingWheel, PendingCountsTimersUntilTheyFireOrAreCancelled) {
  TimingWheel wheel(10ms, 64, t0);
  EXPECT_EQ(wheel.pending(), 0u);
  wheel.schedule(t0 + 10ms, [] {});
  const TimerId b = wheel.schedule(t0 + 20ms, [] {});
  wheel.schedule(t0 + 10s, [] {});
  wheel.schedule(t0 - 1s, [] {});
  EXPECT_EQ(wheel.pending(), 4u);
  wheel.cancel(b);
  EXPECT_EQ(wheel.pending(), 3u);
  wheel.advance(t0 + 10ms);
  EXPECT_EQ(wheel.pending(), 1u);
  wheel.advance(t0 + 10s);
  EXPECT_EQ(wheel.pending(), 0u);
}

TEST(TimingWheel, NowAndTickReportTheLastAdvanceAndTheResolution) {
  TimingWheel wheel(5ms, 64, t0);
  EXPECT_EQ(wheel.now(), t0);
  EXPECT_EQ(wheel.tick(), 5ms);
  wheel.advance(t0 + 7ms);
  EXPECT_EQ(wheel.now(), t0 + 7ms);
  wheel.advance(t0 + 3ms);  // steady time does not go back
  EXPECT_EQ(wheel.now(), t0 + 7ms);
}

TEST(TimingWheel, AThrowingCallbackLeavesTheRestDueForTheNextAdvance) {
  TimingWheel wheel(10ms, 64, t0);
  std::vector<int> order;
  wheel.schedule(t0 + 10ms, [&] { order.push_back(1); });
  wheel.schedule(t0 + 20ms, [&] { throw std::runtime_error("boom"); });
  wheel.schedule(t0 + 30ms, [&] { order.push_back(3); });
  wheel.schedule(t0 + 40ms, [&] { order.push_back(4); });
  EXPECT_THROW(wheel.advance(t0 + 30ms), std::runtime_error);
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_EQ(wheel.pending(), 2u);
  EXPECT_EQ(wheel.advance(t0 + 30ms), 1u);
  EXPECT_EQ(wheel.advance(t0 + 40ms), 1u);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 4}));
}

TEST(TimingWheel, AdvanceFromACallbackIsRejected) {
  TimingWheel wheel(10ms, 64, t0);
  bool threw = false;
  wheel.schedule(t0 + 10ms, [&] {
    try {
      wheel.advance(t0 + 20ms);
    } catch (const std::logic_error&) {
      threw = true;
    }
  });
  wheel.advance(t0 + 10ms);
  EXPECT_TRUE(threw);
}

TEST(TimingWheel, RejectsInvalidConfigurationAndEmptyCallbacks) {
  EXPECT_THROW(TimingWheel(0ms, 64, t0), std::invalid_argument);
  EXPECT_THROW(TimingWheel(10ms, 0, t0), std::invalid_argument);
  EXPECT_THROW(TimingWheel(10ms, 100, t0), std::invalid_argument);
  TimingWheel wheel(10ms, 1, t0);  // one slot is a valid (if slow) wheel
  EXPECT_THROW(wheel.schedule(t0, std::function<void()>{}), std::invalid_argument);
  EXPECT_THROW(wheel.schedule(t0, nullptr), std::invalid_argument);
}

TEST(TimingWheel, HugeDelaysSaturateInsteadOfOverflowing) {
  TimingWheel wheel(10ms, 64, t0);
  int fired = 0;
  wheel.schedule_after(std::chrono::milliseconds::max(), [&] { ++fired; });
  wheel.schedule(Clock::time_point::max(), [&] { ++fired; });
  wheel.advance(t0 + 24h * 365);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(wheel.pending(), 2u);
}

TEST(TimingWheel, ABytesPerTimerFigureIsOneCacheLine) {
  // Not a contract, a budget: 1M pending timers should stay near 64 MB.
  EXPECT_LE(TimingWheel::bytes_per_timer(), 64u);
}

// ------------------------------------------------------- reference model test

// A reference model in the simplest terms: a multimap from effective deadline
// tick to timer, where a timer scheduled for a time at or before now() gets
// the lowest key (it fires at the next advance, ahead of the wheel's timers),
// and equal keys keep insertion order.
//
// Each timer's behaviour when it fires (schedule children, cancel some other
// timer) is a function of (seed, timer number) only, so the real wheel and
// the model perform the same actions if and only if they fire in the same
// order; the logged events are compared after every operation.
class RandomHarness {
 public:
  RandomHarness(std::uint64_t seed, std::chrono::milliseconds tick, std::size_t slots)
      : seed_(seed), tick_(tick), slots_(slots), wheel_(tick, slots, t0), rng_(seed) {}

  void run(int operations) {
    for (int op = 0; op < operations; ++op) {
      const int kind = pick(0, 99);
      if (kind < 45) {
        const Clock::time_point when = random_when(rng_);
        schedule_real(when);
        schedule_model(when);
      } else if (kind < 60) {
        if (next_real_ == 0) continue;
        const int target = pick(0, next_real_ - 1);
        const bool got = wheel_.cancel(ids_[static_cast<std::size_t>(target)]);
        ASSERT_EQ(got, cancel_model(target)) << "cancel of timer " << target;
      } else {
        advance_both(random_step());
        if (testing::Test::HasFatalFailure()) return;
      }
      ASSERT_EQ(wheel_.pending(), model_pending_.size()) << "after operation " << op;
      ASSERT_EQ(next_real_, next_model_);
    }
    advance_both(revolution() * 4);  // everything scheduled so far is due by then
    EXPECT_EQ(wheel_.pending(), model_pending_.size());
  }

 private:
  struct Action {
    std::vector<Clock::duration> children;  // delays relative to now() at firing time
    int cancel_target = -1;
  };

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  Clock::duration revolution() const { return tick_ * static_cast<long>(slots_); }

  // Offsets from a tick before now() up to three revolutions ahead, at
  // microsecond resolution so rounding to the tick is exercised.
  Clock::time_point random_when(std::mt19937_64& rng) const {
    const auto lo = -std::chrono::duration_cast<std::chrono::microseconds>(tick_).count();
    const auto hi = std::chrono::duration_cast<std::chrono::microseconds>(revolution() * 3).count();
    std::uniform_int_distribution<std::int64_t> d(lo, hi);
    return wheel_.now() + std::chrono::microseconds(d(rng));
  }

  Clock::duration random_step() {
    switch (pick(0, 9)) {
      case 0: return Clock::duration::zero();
      case 1: return revolution() * pick(1, 5) + std::chrono::microseconds(pick(0, 5000));  // long gap
      case 2: return std::chrono::microseconds(pick(1, 999));                               // sub-tick
      default: return tick_ * pick(1, 3);
    }
  }

  Action action_of(int timer) const {
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(timer));
    Action a;
    const int roll = std::uniform_int_distribution<int>(0, 9)(rng);
    const int children = roll < 6 ? 0 : roll < 9 ? 1 : 2;
    // 0.5 children per timer on average: the population stays bounded.
    for (int c = 0; c < children; ++c) {
      const int shape = std::uniform_int_distribution<int>(0, 3)(rng);
      if (shape == 0) {
        a.children.push_back(Clock::duration::zero());  // due at the next advance
      } else {
        a.children.push_back(random_when(rng) - wheel_.now());
      }
    }
    if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
      a.cancel_target = std::uniform_int_distribution<int>(0, timer)(rng);
    }
    return a;
  }

  // ---- real wheel
  void schedule_real(Clock::time_point when) {
    const int me = next_real_++;
    ids_.push_back(wheel_.schedule(when, [this, me] { fire_real(me); }));
  }

  void fire_real(int me) {
    real_events_.push_back("fire " + std::to_string(me));
    const Action a = action_of(me);
    for (const auto delay : a.children) schedule_real(wheel_.now() + delay);
    if (a.cancel_target >= 0) {
      const bool got = wheel_.cancel(ids_[static_cast<std::size_t>(a.cancel_target)]);
      real_events_.push_back("cancel " + std::to_string(a.cancel_target) + " " + std::to_string(got));
    }
  }

  // ---- model
  std::int64_t model_key(Clock::time_point when) const {
    if (when <= model_now_) return INT64_MIN;
    const auto elapsed = (when - t0).count();
    const auto per_tick = std::chrono::duration_cast<Clock::duration>(tick_).count();
    return elapsed / per_tick + (elapsed % per_tick != 0 ? 1 : 0);
  }

  void schedule_model(Clock::time_point when) {
    const int me = next_model_++;
    entries_.push_back(queue_.emplace(model_key(when), me));
    queued_.push_back(true);
    model_pending_.insert(me);
  }

  bool cancel_model(int target) {
    if (model_pending_.erase(target) == 0) return false;
    const auto t = static_cast<std::size_t>(target);
    if (queued_[t]) queue_.erase(entries_[t]);  // else already taken into this advance's snapshot
    queued_[t] = false;
    return true;
  }

  std::vector<std::string> advance_model(Clock::time_point now) {
    model_now_ = std::max(model_now_, now);
    const std::int64_t to = (model_now_ - t0) / std::chrono::duration_cast<Clock::duration>(tick_);
    std::vector<int> snapshot;
    while (!queue_.empty() && queue_.begin()->first <= to) {
      snapshot.push_back(queue_.begin()->second);
      queued_[static_cast<std::size_t>(snapshot.back())] = false;
      queue_.erase(queue_.begin());
    }
    std::vector<std::string> events;
    for (const int me : snapshot) {
      if (model_pending_.erase(me) == 0) continue;  // cancelled by an earlier callback
      events.push_back("fire " + std::to_string(me));
      const Action a = action_of(me);
      for (const auto delay : a.children) schedule_model(model_now_ + delay);
      if (a.cancel_target >= 0) {
        const bool got = cancel_model(a.cancel_target);
        events.push_back("cancel " + std::to_string(a.cancel_target) + " " + std::to_string(got));
      }
    }
    return events;
  }

  void advance_both(Clock::duration step) {
    const Clock::time_point now = wheel_.now() + step;
    real_events_.clear();
    const std::size_t fired = wheel_.advance(now);
    const std::vector<std::string> expected = advance_model(now);
    ASSERT_EQ(real_events_, expected) << "advance to t0+" << (now - t0).count() << "ns";
    const auto expected_fires = static_cast<std::size_t>(
        std::count_if(expected.begin(), expected.end(), [](const std::string& e) { return e.starts_with("fire"); }));
    ASSERT_EQ(fired, expected_fires);
  }

  std::uint64_t seed_;
  std::chrono::milliseconds tick_;
  std::size_t slots_;
  TimingWheel wheel_;
  std::mt19937_64 rng_;
  int next_real_ = 0;
  std::vector<TimerId> ids_;
  std::vector<std::string> real_events_;
  int next_model_ = 0;
  Clock::time_point model_now_ = t0;
  std::multimap<std::int64_t, int> queue_;
  std::vector<std::multimap<std::int64_t, int>::iterator> entries_;  // by timer number
  std::vector<bool> queued_;                                         // entries_[i] still in queue_
  std::set<int> model_pending_;
};

TEST(TimingWheel, MatchesAReferenceModelUnderRandomOperations) {
  std::vector<std::uint64_t> seeds{1, 2, 3, std::random_device{}()};
  if (const char* env = std::getenv("HERALD_TEST_SEED")) seeds = {std::strtoull(env, nullptr, 10)};
  struct Shape {
    std::chrono::milliseconds tick;
    std::size_t slots;
  };
  for (const std::uint64_t seed : seeds) {
    for (const Shape shape : {Shape{10ms, 64}, Shape{1ms, 8}, Shape{10ms, 1}}) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun with HERALD_TEST_SEED=" + std::to_string(seed) +
                   "), tick " + std::to_string(shape.tick.count()) + "ms, slots " + std::to_string(shape.slots));
      RandomHarness harness(seed, shape.tick, shape.slots);
      harness.run(3000);
      if (HasFatalFailure()) return;
    }
  }
}

}  // namespace
}  // namespace herald::timers
