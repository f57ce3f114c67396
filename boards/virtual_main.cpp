// The virtual board: the Verilated SoC behind a TCP port or a pseudo-terminal.
//
// No Python runs per clock: this loop toggles the clock, plays an 8N1 line model on the SoC's
// rx pin (bytes from the client) and decodes its tx pin (bytes to the client). See
// docs/virtual_board.md. Plusargs:
//   +cpb=N          clocks per bit of the line model (the SoC's own divider must agree)
//   +drop=P +flip=P +seed=S   per byte, in either direction: lost / one bit flipped (seeded)
//   +port=N         TCP port on 127.0.0.1 (0: any free port; printed as "port N")
//   +pty            serve a pseudo-terminal instead (printed as "pty PATH")
//   +once           exit after the first client session (TCP)
//   +record=FILE    write "clock byte" for every byte put on rx (for +replay)
//   +replay=FILE    no client: play the recorded rx bytes at their clocks, print the speed
//                   (timed from clock +from=C on) and a hash of every tx byte with its clock
//   +fst=FILE +fst_from=C +fst_cycles=N   wave dump of cycles [C, C+N) (builds with --trace-fst)
// Signals: SIGINT/SIGTERM end the server cleanly ("bye"); SIGUSR1 resets the SoC (the reset
// button: memories keep their contents, the control state and the link start over).
#include "Vsoc.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_fst_c.h"
#endif
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>
#include <vector>

static volatile sig_atomic_t g_stop = 0, g_reset = 0;
static void on_stop(int) { g_stop = 1; }
static void on_reset(int) { g_reset = 1; }

static double cpu_s() {            // this process's CPU time (the machine may be shared)
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Vsoc::eval() wraps the model's scheduler (Verilator's Vsoc___024root___eval) in run-time
// bookkeeping this model never needs: two mutex-guarded queues (objects to delete, messages from
// other threads), empty for a single-threaded model with no classes; at two evaluations per
// clock they cost about a tenth of the time. So after a first public eval() (it runs the initial
// blocks) the loop calls the scheduler itself. It is an internal name: declared weak, a Verilator
// that renames it still links, and the loop falls back to eval().
class Vsoc___024root;
void Vsoc___024root___eval(Vsoc___024root *) __attribute__((weak));

static inline void eval(Vsoc &top) {
  if (Vsoc___024root___eval) Vsoc___024root___eval(top.rootp);
  else top.eval();
}

static double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char **argv) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vsoc top{&ctx};
  int cpb = 4, port = 0, use_pty = 0, once = 0;
  double drop = 0, flip = 0;
  unsigned long seed = 1;
  unsigned long long fst_from = 0, fst_cycles = 0, replay_from = 0;
  char fst_name[4096] = "", record_name[4096] = "", replay_name[4096] = "";
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    sscanf(a, "+cpb=%d", &cpb); sscanf(a, "+drop=%lf", &drop);
    sscanf(a, "+flip=%lf", &flip); sscanf(a, "+seed=%lu", &seed);
    sscanf(a, "+port=%d", &port); sscanf(a, "+fst_from=%llu", &fst_from);
    sscanf(a, "+fst_cycles=%llu", &fst_cycles);
    sscanf(a, "+fst=%4095s", fst_name); sscanf(a, "+record=%4095s", record_name);
    sscanf(a, "+replay=%4095s", replay_name); sscanf(a, "+from=%llu", &replay_from);
    if (!strcmp(a, "+pty")) use_pty = 1;
    if (!strcmp(a, "+once")) once = 1;
  }
  std::signal(SIGINT, on_stop);
  std::signal(SIGTERM, on_stop);
  std::signal(SIGUSR1, on_reset);
  std::signal(SIGPIPE, SIG_IGN);

  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  auto fault = [&](int b) -> int {           // -1: lost
    if (drop > 0 && uni(rng) < drop) return -1;
    if (flip > 0 && uni(rng) < flip) return b ^ (1 << (rng() % 8));
    return b;
  };

#if VM_TRACE
  std::unique_ptr<VerilatedFstC> fst;
  if (fst_name[0]) {
    ctx.traceEverOn(true);
    fst.reset(new VerilatedFstC);
    top.trace(fst.get(), 99);
    fst->open(fst_name);
  }
#else
  if (fst_name[0]) { fprintf(stderr, "this build has no wave dump (--trace-fst)\n"); return 2; }
#endif

  top.clk = 0; top.rst = 1; top.rx = 1;
  top.eval();                      // the initial blocks; then eval(top) in the loop
  unsigned long long clk = 0;
  auto tick = [&]() {
    top.clk = 0; eval(top);
#if VM_TRACE
    bool dump = fst && clk >= fst_from && clk - fst_from < fst_cycles;
    if (dump) fst->dump((uint64_t)(2 * clk));
#endif
    top.clk = 1; eval(top);
#if VM_TRACE
    if (dump) fst->dump((uint64_t)(2 * clk + 1));
#endif
    ++clk;
  };
  auto reset = [&]() { top.rx = 1; top.rst = 1; for (int i = 0; i < 4; ++i) tick(); top.rst = 0; };
  reset();

  // The line model: a byte queue played on rx, and a decoder of tx.
  std::deque<unsigned char> inq;
  std::string out;
  unsigned sh = 0, bits = 0, timer = 0;            // sending on rx
  unsigned rbusy = 0, rcnt = 0, rbits = 0, rsh = 0;  // receiving on tx
  FILE *record = record_name[0] ? fopen(record_name, "w") : nullptr;
  auto line_clock = [&](unsigned long &tx_n, long long &last_tx) {
    if (bits == 0 && !inq.empty()) {
      if (record) fprintf(record, "%llu %u\n", clk, (unsigned)inq.front());
      sh = (1u << 9) | ((unsigned)inq.front() << 1); inq.pop_front(); bits = 10; timer = cpb;
    }
    top.rx = bits ? (sh & 1) : 1;
    tick();
    if (bits && --timer == 0) { sh >>= 1; --bits; timer = cpb; }
    if (!rbusy) {
      if (!top.tx) { rbusy = 1; rcnt = cpb + cpb / 2 - 1; rbits = 0; }
    } else if (rcnt) --rcnt;
    else if (rbits < 8) { rsh = (rsh >> 1) | (top.tx << 7); ++rbits; rcnt = cpb - 1; }
    else {
      rbusy = 0;
      if (top.tx) {
        int b = fault(rsh & 0xFF);
        if (b >= 0) out.push_back((char)b);
        ++tx_n; last_tx = (long long)clk;
      }
    }
  };

  if (replay_name[0]) {
    // The same model and the same rx bit stream as a recorded session, without any I/O.
    FILE *f = fopen(replay_name, "r");
    if (!f) { perror(replay_name); return 2; }
    std::vector<std::pair<unsigned long long, unsigned>> events;
    unsigned long long c; unsigned b;
    while (fscanf(f, "%llu %u", &c, &b) == 2) events.emplace_back(c, b);
    fclose(f);
    unsigned long tx_n = 0; long long last_tx = -1;
    unsigned long long start = clk, end = events.empty() ? clk : events.back().first + 4096;
    size_t k = 0;
    // FNV-1a over every byte the SoC sent and the clock it ended on: two models that agree on
    // it sent the same bytes at the same clocks
    unsigned long long hash = 14695981039346656037ULL;
    auto mix = [&](unsigned long long v) { hash = (hash ^ v) * 1099511628211ULL; };
    double t0 = now_s(), c0 = cpu_s();
    bool timing = replay_from == 0;
    while (clk < end && !g_stop) {
      if (!timing && clk >= replay_from) { timing = true; start = clk; t0 = now_s(); c0 = cpu_s(); }
      // The byte enters the queue exactly when the recorded run started sending it.
      if (k < events.size() && events[k].first == clk) inq.push_back((unsigned char)events[k++].second);
      line_clock(tx_n, last_tx);
      if (!out.empty()) {
        for (unsigned char b : out) { mix(b); mix(clk); }
        out.clear();
      }
    }
    double dt = now_s() - t0, dc = cpu_s() - c0;
    printf("replay clocks %llu usec %lld cpu_usec %lld tx %lu hash %llu\n", clk - start,
           (long long)(dt * 1e6), (long long)(dc * 1e6), tx_n, hash);
    return 0;
  }

  int srv = -1, master = -1, slave = -1;
  if (use_pty) {
    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) { perror("posix_openpt"); return 1; }
    const char *name = ptsname(master);
    // Hold the slave open ourselves: the master then never reads EIO between clients.
    slave = open(name, O_RDWR | O_NOCTTY);
    termios t{};
    tcgetattr(slave, &t); cfmakeraw(&t); tcsetattr(slave, TCSANOW, &t);
    fcntl(master, F_SETFL, O_NONBLOCK);
    printf("pty %s\n", name); fflush(stdout);
  } else {
    srv = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{}; addr.sin_family = AF_INET; addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(srv, (sockaddr *)&addr, sizeof addr) || listen(srv, 1)) {
      fprintf(stderr, "cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno)); return 1;
    }
    socklen_t alen = sizeof addr;
    getsockname(srv, (sockaddr *)&addr, &alen);
    printf("port %d\n", ntohs(addr.sin_port)); fflush(stdout);
  }

  while (!g_stop) {
    int cl = master;
    if (!use_pty) {
      pollfd p{srv, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;           // wakes up for signals
      cl = accept(srv, nullptr, nullptr);
      if (cl < 0) continue;
      int one = 1;
      fcntl(cl, F_SETFL, O_NONBLOCK);
      setsockopt(cl, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    }
    inq.clear(); out.clear(); bits = 0; rbusy = 0;
    unsigned long rx_n = 0, tx_n = 0, resets = 0;
    long long first_rx = -1, last_tx = -1;
    unsigned long long clk0 = clk;
    double t0 = now_s(), c0 = cpu_s();
    unsigned long quiet = 0;
    bool open = true;
    while (open && !g_stop) {
      if (g_reset) {
        g_reset = 0; ++resets;
        inq.clear(); bits = 0; rbusy = 0; out.clear();
        reset();
      }
      bool idle = inq.empty() && bits == 0 && !rbusy && !top.active && out.empty();
      quiet = idle ? quiet + 1 : 0;
      // The client is served every 4096 clocks (under a millisecond of simulated time at the
      // model's speed, as a USB serial adapter's latency): each read and write is a system call
      // and a wake-up of the other side; every 1024 clocks cost the attached run 7-10% of its
      // speed (bench/virtual_board.py), every 16384 made the host's round trips the steps' limit.
      if ((clk & 4095) == 0 || quiet > 4096) {
        if (quiet > 4096) {
          pollfd p{cl, POLLIN, 0};
          poll(&p, 1, 20);
        }
        unsigned char buf[4096];
        for (;;) {
          ssize_t n = read(cl, buf, sizeof buf);
          if (n == 0) { open = false; break; }
          if (n < 0) break;
          for (ssize_t k = 0; k < n; ++k) {
            int b = fault(buf[k]);
            if (b >= 0) inq.push_back((unsigned char)b);
          }
          if (first_rx < 0) first_rx = (long long)(clk - clk0);
          rx_n += n;
        }
        while (!out.empty()) {
          ssize_t n = write(cl, out.data(), out.size());
          if (n <= 0) break;
          out.erase(0, n);
        }
        if (quiet > 4096) { quiet = 4096; continue; }
      }
      line_clock(tx_n, last_tx);
    }
    if (!use_pty) close(cl);
    double dt = now_s() - t0, dc = cpu_s() - c0;
    printf("session rx %lu tx %lu first_rx %lld last_tx %lld clocks %llu usec %lld cpu_usec %lld "
           "resets %lu start %llu\n", rx_n, tx_n, first_rx,
           last_tx >= 0 ? last_tx - (long long)clk0 : -1, clk - clk0, (long long)(dt * 1e6),
           (long long)(dc * 1e6), resets, clk0);
    fflush(stdout);
    if (once || use_pty) break;
  }
  if (record) fclose(record);
#if VM_TRACE
  if (fst) fst->close();
#endif
  if (slave >= 0) close(slave);
  if (master >= 0) close(master);
  if (srv >= 0) close(srv);
  top.final();
  printf("bye\n"); fflush(stdout);
  return 0;
}
