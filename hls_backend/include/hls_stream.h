// hls_stream.h -- streamdsl's own stand-in for the Vitis HLS stream class, for C simulation
// with g++ only (Vitis synthesis uses its own header; this one is never part of a hardware
// build). Written from the public API description in UG1399; no vendor code.
//
// Two modes, chosen at compile time:
//   default             sequential, like Vitis csim: a stream is an unbounded queue and the
//                       dataflow processes run one after another in call order. Reading an
//                       empty stream is a process-order bug: it is reported and the run fails.
//                       With SD_CSIM_FEEDBACK (a region with a feedback stream, one read by a
//                       process called before its writer) the processes still run one at a
//                       time, in call order, but one that reads an empty stream is suspended
//                       until the stream is written (see `Baton`): deterministic, and the same
//                       run as above for a region without feedback.
//   SD_CSIM_THREADED    every dataflow process runs in its own std::thread; a stream holds at
//                       most its declared depth (hls::stream<T, D>, D = 0 meaning 2, the Vitis
//                       default) and read/write block. A watchdog reports a depth deadlock
//                       (every live process blocked, no progress) naming each blocked process
//                       and stream, and exits with status 3.
//                       SD_CSIM_SEED=<n> (environment) explores other interleavings: every
//                       stream access of a process may pause it, on a schedule drawn from the
//                       seed and the process name, now and then long enough for the others to
//                       run far ahead (see `jitter`). A race in the emitted code (a process that
//                       relies on its neighbours' speed) then shows up as wrong output in csim.
#ifndef SD_HLS_STREAM_H
#define SD_HLS_STREAM_H

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <utility>

#if defined(SD_CSIM_THREADED) || defined(SD_CSIM_FEEDBACK)
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>
#endif

namespace sd_csim {

#ifdef SD_CSIM_THREADED
// Global bookkeeping of the running processes, for the deadlock watchdog.
struct Monitor {
  std::mutex m;
  int live = 0;                 // process threads not yet finished
  int blocked = 0;              // process threads waiting on a stream
  unsigned long progress = 0;   // successful reads + writes, all streams
  std::vector<std::string> waits;  // one line per blocked process (debug report)

  static Monitor& get() {
    static Monitor monitor;
    return monitor;
  }

  // Called with `m` held by a waiting process: report a deadlock (and exit 3) once every live
  // process has been blocked with no token moving for the watchdog period.
  void check(unsigned long& seen, std::chrono::steady_clock::time_point& since);
};

inline thread_local const char* current_process = "main";

// How long the whole design may sit with every process blocked before it is called a deadlock.
inline int watchdog_ms() {
  const char* env = std::getenv("SD_CSIM_WATCHDOG_MS");
  return env ? std::atoi(env) : 1000;
}

inline void Monitor::check(unsigned long& seen, std::chrono::steady_clock::time_point& since) {
  if (blocked < live || progress != seen) {
    seen = progress;
    since = std::chrono::steady_clock::now();
    return;
  }
  if (std::chrono::steady_clock::now() - since <= std::chrono::milliseconds(watchdog_ms())) return;
  std::string report = "DEADLOCK: all " + std::to_string(live) + " running dataflow processes are blocked on streams:\n";
  for (const auto& w : waits) report += w + "\n";
  report += "fix: raise the depth of a full stream on the cycle (or size the FIFOs with sd.compile)";
  std::fprintf(stderr, "%s\n", report.c_str());
  std::fflush(stderr);
  std::_Exit(3);
}

// Seeded schedule perturbation, called at every stream access outside any lock. Most accesses
// go straight on; 1 in 8 yields or sleeps a few microseconds (fine-grained reordering); 1 in
// 16 stalls the process for up to SD_CSIM_STALL_US (default 2000) microseconds, so its
// neighbours fill and drain their FIFOs and buffers as far as the code lets them.
inline void jitter() {
  static const char* seed_env = std::getenv("SD_CSIM_SEED");
  if (seed_env == nullptr) return;
  static const long stall_us = [] {
    const char* env = std::getenv("SD_CSIM_STALL_US");
    return env ? std::atol(env) : 2000L;
  }();
  thread_local std::mt19937 rng(static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10)) * 2654435761u ^
                                static_cast<unsigned>(std::hash<std::string>{}(current_process)));
  const unsigned draw = rng() % 16;
  if (draw == 0)
    std::this_thread::sleep_for(std::chrono::microseconds(1 + rng() % stall_us));
  else if (draw == 1)
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20));
  else if (draw == 2)
    std::this_thread::yield();
}

// A process that polls its streams (non-blocking empty()/full(), e.g. a layout converter) calls
// this once per loop iteration: while it makes no progress it counts as blocked.
inline void poll(bool moved, const char* in, const char* out) {
  thread_local bool idle = false;
  thread_local std::string line;
  thread_local unsigned long seen = ~0ul;
  thread_local std::chrono::steady_clock::time_point since;
  Monitor& mon = Monitor::get();
  std::lock_guard<std::mutex> lock(mon.m);
  if (moved) {
    if (idle) {
      mon.blocked -= 1;
      for (auto it = mon.waits.begin(); it != mon.waits.end(); ++it)
        if (*it == line) {
          mon.waits.erase(it);
          break;
        }
      idle = false;
    }
    return;
  }
  if (!idle) {
    idle = true;
    mon.blocked += 1;
    line = std::string("  ") + current_process + " polls streams '" + in + "' (for input) and '" + out +
           "' (for space), neither can move";
    mon.waits.push_back(line);
    seen = ~0ul;
  }
  mon.check(seen, since);
  std::this_thread::yield();
}

// A dataflow region in threaded mode: one thread per process, joined at the end.
class Region {
 public:
  template <class F>
  void spawn(const char* name, F&& body) {
    {
      std::lock_guard<std::mutex> lock(Monitor::get().m);
      Monitor::get().live += 1;
    }
    threads_.emplace_back([name, body]() mutable {
      current_process = name;
      body();
      std::lock_guard<std::mutex> lock(Monitor::get().m);
      Monitor::get().live -= 1;
      Monitor::get().progress += 1;
    });
  }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }
  ~Region() { join(); }

 private:
  std::vector<std::thread> threads_;
};
#endif

#ifndef SD_CSIM_THREADED
// Cycle estimate of sequential csim (sd_support.h: SD_II per pipelined iteration, SD_DEPTH per
// loop entry, SD_LOOP_ENTRY per iteration of a loop that is not pipelined). Each process has a
// clock: `busy` counts its own cycles; `now` also waits for data, as a read cannot happen before
// the cycle after its beat was written (a stream keeps each beat's write time). With unbounded
// streams this is the dataflow schedule with infinite FIFOs; the largest `now` estimates the
// makespan.
// A DMA's HBM pseudo-channel: when it is next free, in bit-times (cycles x its bits per cycle),
// and the cycles its DMA waited for it.
struct Channel {
  long free = 0;
  long stall = 0;
};
struct Clock {
  long now = 0;
  long start = -1;  // the current pipelined iteration's first cycle (SD_II), -1 outside one
  long iteration = 0;  // which iteration, numbered across all processes
  long busy = 0;
  long lag = 0;  // a beat written now leaves the pipeline this much later
  Channel hbm_alone, hbm_scheduled;  // a DMA's channel on each of the two clocks
};

struct Cycles {
  std::deque<std::pair<std::string, Clock>> processes;  // in call order
  std::deque<std::pair<std::string, long>> beats;       // beats written, per stream
  Clock* current = nullptr;
  static Cycles& get() {
    static Cycles cycles;
    return cycles;
  }
};

inline long iterations() {
  static long count = 0;
  return ++count;
}
inline void tick(long n) {
  if (Clock* c = Cycles::get().current) {
    c->now += n;
    c->busy += n;
    c->start = -1;
  }
}
// The top of a pipelined iteration of initiation interval n: the iteration starts now and the
// next one n cycles later; the reads in between happen at their offsets in the iteration.
inline void iteration(long n) {
  if (Clock* c = Cycles::get().current) {
    c->start = c->now;
    c->iteration = iterations();
    c->now += n;
    c->busy += n;
  }
}
inline long now() { return Cycles::get().current ? Cycles::get().current->now : 0; }
inline long leaves() { return Cycles::get().current ? Cycles::get().current->now + Cycles::get().current->lag : 0; }
inline void lag(long d) {
  if (Clock* c = Cycles::get().current) c->lag = d;
}
// One word of `bits` at clock `t` (its iteration's II already counted) through a channel moving
// `per_cycle` bits a cycle: the port keeps its requests in flight, so the channel streams from the
// cycle the loop would have issued the word without these waits; returns the cycles the
// iteration waits for the word.
inline long channel_wait(Channel& ch, long t, long bits, long per_cycle) {
  const long issue = (t - 1 - ch.stall) * per_cycle;
  ch.free = (ch.free > issue ? ch.free : issue) + bits;
  const long ready = (ch.free + per_cycle - 1) / per_cycle;
  const long wait = ready > t ? ready - t : 0;
  ch.stall += wait;
  return wait;
}
// A DMA word: counted twice, on the process's own clock (`busy`: inputs always there, the node
// alone as the timing model times it) and on its clock in the schedule (`now`, which also waits
// for data: the channel catches up while a store waits for its beats).
inline void hbm(long bits, long per_cycle) {
  if (Clock* c = Cycles::get().current) {
    c->busy += channel_wait(c->hbm_alone, c->busy, bits, per_cycle);
    c->now += channel_wait(c->hbm_scheduled, c->now, bits, per_cycle);
  }
}
inline void wait_until(long t) {
  if (Clock* c = Cycles::get().current)
    if (c->now < t) c->now = t;
}
// A beat written at cycle `stamp` is read at the cycle after it. Inside a pipelined iteration the
// k-th beat of one stream is read at the iteration's k-th cycle (one beat a cycle per port), so
// the whole iteration starts late enough for it, as the timing model places reads; elsewhere the
// process just waits for it. `seen` / `reads` are the reading stream's count for the iteration.
inline void read_beat(long stamp, long& seen, long& reads) {
  Clock* c = Cycles::get().current;
  if (c == nullptr || c->start < 0) {
    wait_until(stamp + 1);
    return;
  }
  if (seen != c->iteration) {
    seen = c->iteration;
    reads = 0;
  }
  const long late = stamp + 1 - reads++ - c->start;
  if (late > 0) {
    c->start += late;
    c->now += late;
  }
}
// A beat written in a pipelined iteration of depth d leaves in the iteration's last cycles, a
// beat a cycle per port: of the B beats a stream gets in one iteration, the k-th in its cycle
// d - B + k (the last in the iteration's last cycle, d - 1, where the timing model writes it); it
// is readable the cycle after. `seen` / `writes` are the stream's count for the iteration.
// Elsewhere a beat is written at the process's clock (plus its lag).
inline void write_beat(std::deque<long>& stamps, long& seen, long& writes) {
  Clock* c = Cycles::get().current;
  if (c == nullptr || c->start < 0) {
    stamps.push_back(leaves());
    return;
  }
  if (seen != c->iteration) {
    seen = c->iteration;
    writes = 0;
  }
  for (long j = 1; j <= writes; ++j) stamps[stamps.size() - j] -= 1;  // the earlier beats a cycle earlier each
  ++writes;
  stamps.push_back(leaves() - 1);
}
template <class F>
void process(const char* name, F&& body) {
  Cycles& cycles = Cycles::get();
  cycles.processes.emplace_back(name, Clock());
  cycles.current = &cycles.processes.back().second;
  body();
  cycles.current = nullptr;
}
// Writes the estimate as JSON to $SD_CYCLES_OUT (if set) at the end of the dataflow region.
inline void report_cycles() {
  const char* path = std::getenv("SD_CYCLES_OUT");
  if (path == nullptr) return;
  FILE* f = std::fopen(path, "w");
  if (f == nullptr) return;
  Cycles& cycles = Cycles::get();
  long makespan = 0;
  std::fprintf(f, "{\"processes\": {");
  const char* sep = "";
  for (const auto& p : cycles.processes) {
    std::fprintf(f, "%s\"%s\": {\"busy\": %ld, \"finish\": %ld}", sep, p.first.c_str(), p.second.busy, p.second.now);
    makespan = p.second.now > makespan ? p.second.now : makespan;
    sep = ", ";
  }
  std::fprintf(f, "}, \"beats\": {");
  sep = "";
  for (const auto& b : cycles.beats) {
    std::fprintf(f, "%s\"%s\": %ld", sep, b.first.c_str(), b.second);
    sep = ", ";
  }
  std::fprintf(f, "}, \"makespan\": %ld}\n", makespan);
  std::fclose(f);
  cycles.processes.clear();
  cycles.beats.clear();
}
#endif

[[noreturn]] inline void fail(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

#if !defined(SD_CSIM_THREADED) && defined(SD_CSIM_FEEDBACK)
// Sequential csim of a region with feedback streams. Each process gets a thread, but only the
// one holding the baton runs: at the start the first in call order; when it reads an empty stream
// or ends, the first in call order that is neither finished nor waiting on an empty stream. A
// write makes the stream's waiting reader runnable again. The order of events is fixed by the
// call order alone, as in plain sequential csim, and so is the cycle estimate (the running
// process's clock is `Cycles::current`). Nobody able to run before all have ended is a deadlock:
// a cycle of streams none of which has a token.
class Baton {
 public:
  static Baton& get() {
    static Baton baton;
    return baton;
  }
  template <class F>
  void spawn(const char* name, F&& body) {
    Cycles& cycles = Cycles::get();
    cycles.processes.emplace_back(name, Clock());
    const int me = static_cast<int>(procs_.size());
    procs_.push_back(Proc{name, &cycles.processes.back().second, false, nullptr, {}});
    threads_.emplace_back([this, me, body]() mutable {
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return running_ == me; });
      }
      body();
      std::lock_guard<std::mutex> lock(m_);
      procs_[me].done = true;
      hand_over();
    });
  }
  // The calls have spawned every process: run them, and return when all have ended.
  void run() {
    {
      std::lock_guard<std::mutex> lock(m_);
      hand_over();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    procs_.clear();
    running_ = -1;
  }
  // The running process found `stream` empty: the others run until a write to it.
  void wait_for(const void* stream, const std::string& name) {
    std::unique_lock<std::mutex> lock(m_);
    const int me = running_;
    procs_[me].waits = stream;
    procs_[me].stream = name;
    hand_over();
    cv_.wait(lock, [&] { return running_ == me; });
  }
  void wrote(const void* stream) {
    std::lock_guard<std::mutex> lock(m_);
    for (auto& p : procs_)
      if (p.waits == stream) p.waits = nullptr;
  }

 private:
  struct Proc {
    const char* name;
    Clock* clock;
    bool done = false;
    const void* waits = nullptr;  // the empty stream it waits on
    std::string stream;
  };
  void hand_over() {  // with m_ held
    running_ = -1;
    Cycles::get().current = nullptr;
    std::string waiting;
    for (size_t i = 0; i < procs_.size(); ++i) {
      if (procs_[i].done) continue;
      if (procs_[i].waits == nullptr) {
        running_ = static_cast<int>(i);
        Cycles::get().current = procs_[i].clock;
        cv_.notify_all();
        return;
      }
      waiting += std::string("  ") + procs_[i].name + " waits on stream '" + procs_[i].stream + "' (empty)\n";
    }
    if (!waiting.empty())
      fail("DEADLOCK: no process can run, every one left reads an empty stream (a cycle of streams without a "
           "token):\n" + waiting + "fix: let a process on the cycle write before it reads the feedback stream");
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Proc> procs_;
  std::vector<std::thread> threads_;
  int running_ = -1;
};
#endif

}  // namespace sd_csim

namespace hls {

template <typename T, int DEPTH = 0>
class stream;

// The base class: capacity is a run-time value so stream<T, D>& converts to stream<T>&
// (processes take `hls::stream<T>&` parameters, as in Vitis).
template <typename T>
class stream<T, 0> {
 public:
  stream() : name_("unnamed"), depth_(2) {}
  explicit stream(const char* name) : name_(name), depth_(2) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream() {
    if (!q_.empty())
      std::fprintf(stderr, "WARNING: hls::stream '%s' destroyed with %zu unread tokens\n", name_.c_str(), q_.size());
  }

  const char* name() const { return name_.c_str(); }
  int depth() const { return depth_; }

#ifndef SD_CSIM_THREADED
  T read() {
#ifdef SD_CSIM_FEEDBACK
    while (q_.empty()) sd_csim::Baton::get().wait_for(this, name_);
#endif
    if (q_.empty())
      sd_csim::fail("ERROR: hls::stream '" + name_ +
                    "' is read while empty (a process reads before its producer ran: "
                    "sequential csim needs processes in dataflow order)");
    T value = q_.front();
    q_.pop_front();
    sd_csim::read_beat(stamps_.front(), read_iteration_, reads_);
    stamps_.pop_front();
    return value;
  }
  void write(const T& value) {
    q_.push_back(value);
    sd_csim::write_beat(stamps_, write_iteration_, writes_);
    if (written_ == nullptr) {
      sd_csim::Cycles::get().beats.emplace_back(name_, 0);
      written_ = &sd_csim::Cycles::get().beats.back().second;
    }
    *written_ += 1;
#ifdef SD_CSIM_FEEDBACK
    sd_csim::Baton::get().wrote(this);
#endif
  }
  bool empty() const { return q_.empty(); }
  bool full() const { return false; }  // unbounded, like Vitis csim
  size_t size() const { return q_.size(); }
#else
  T read() {
    sd_csim::jitter();
    std::unique_lock<std::mutex> lock(m_);
    wait(lock, [this] { return !q_.empty(); }, "empty");
    T value = q_.front();
    q_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    note_progress();
    return value;
  }
  void write(const T& value) {
    sd_csim::jitter();
    std::unique_lock<std::mutex> lock(m_);
    wait(lock, [this] { return static_cast<int>(q_.size()) < depth_; }, "full");
    q_.push_back(value);
    lock.unlock();
    not_empty_.notify_one();
    note_progress();
  }
  bool empty() {
    std::lock_guard<std::mutex> lock(m_);
    return q_.empty();
  }
  bool full() {
    std::lock_guard<std::mutex> lock(m_);
    return static_cast<int>(q_.size()) >= depth_;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(m_);
    return q_.size();
  }
#endif

 protected:
  void set_depth(int depth) { depth_ = depth > 0 ? depth : 2; }

 private:
  std::string name_;
  int depth_;
  std::deque<T> q_;
#ifndef SD_CSIM_THREADED
  std::deque<long> stamps_;  // the cycle each beat was written (the cycle estimate)
  long* written_ = nullptr;  // this stream's entry of Cycles::beats
  long read_iteration_ = 0, reads_ = 0;  // beats read in the reader's current pipelined iteration
  long write_iteration_ = 0, writes_ = 0;  // beats written in the writer's current pipelined iteration
#endif

#ifdef SD_CSIM_THREADED
  std::mutex m_;
  std::condition_variable not_empty_, not_full_;

  static void note_progress() {
    std::lock_guard<std::mutex> lock(sd_csim::Monitor::get().m);
    sd_csim::Monitor::get().progress += 1;
  }

  // Block until `ready()`; while blocked, count this process as blocked and check for a
  // deadlock: every live process blocked and no token moved for the watchdog period.
  template <class Ready>
  void wait(std::unique_lock<std::mutex>& lock, Ready ready, const char* state) {
    if (ready()) return;
    auto& mon = sd_csim::Monitor::get();
    std::string line;
    {
      std::lock_guard<std::mutex> g(mon.m);
      mon.blocked += 1;
      line = std::string("  ") + sd_csim::current_process + " waits on stream '" + name_ + "' (" + state + ", " +
             std::to_string(q_.size()) + "/" + std::to_string(depth_) + " tokens)";
      mon.waits.push_back(line);
    }
    auto& cv = (state[0] == 'e') ? not_empty_ : not_full_;
    unsigned long seen = ~0ul;
    auto since = std::chrono::steady_clock::now();
    while (!ready()) {
      cv.wait_for(lock, std::chrono::milliseconds(10));
      if (ready()) break;
      std::lock_guard<std::mutex> g(mon.m);
      mon.check(seen, since);
    }
    std::lock_guard<std::mutex> g(mon.m);
    mon.blocked -= 1;
    for (auto it = mon.waits.begin(); it != mon.waits.end(); ++it)
      if (*it == line) {
        mon.waits.erase(it);
        break;
      }
  }
#endif
};

// A stream with a compile-time depth (Vitis: hls::stream<T, DEPTH>).
template <typename T, int DEPTH>
class stream : public stream<T, 0> {
 public:
  stream() : stream<T, 0>() { this->set_depth(DEPTH); }
  explicit stream(const char* name) : stream<T, 0>(name) { this->set_depth(DEPTH); }
};

}  // namespace hls

#endif  // SD_HLS_STREAM_H
