/* The output buffer as firmware: hdl/outbuf.py's SPIKES and PROBE_DATA frames, numbered,
 * kept until an OUT_ACK covers them and sent again when none came for LINK_RESEND_CLOCKS.
 *
 * The chip's host spikes of a step go into one ring per core (the SPIKE register, a spike a
 * load); a core's frame closes when it holds LINK_PER_FRAME neurons, and at the step's end
 * every core's partial frame closes, cores in order, the last core's always (even empty, with
 * END_OF_STEP). PROBE_DATA payloads go into a byte ring at the barrier, before the step's last
 * frames. A frame's descriptor keeps where it ends in its ring: a ring's frames lie end to end
 * in the order of their numbers. out_room() says whether a whole step fits (the window and
 * every ring), so a slow host slows the run instead of losing spikes. */
#include "link.h"
#include "board.h"
#include "config.h"
#include "protocol.h"
#include "registers.h"
#include "soc.h"

#define OW LINK_OUT_WINDOW
#define K LINK_N_CORES
#define RMASK (LINK_OUT_RING - 1u)
#define PMASK (LINK_PROBE_RING - 1u)
#define F_END 1                     /* the step's last frame */
#define F_PROBE 2                   /* a PROBE_DATA payload */
_Static_assert((OW & (OW - 1)) == 0 && OW <= 64, "out window");
_Static_assert(LINK_OUT_RING <= 0x8000 && LINK_PROBE_RING <= 0x8000, "16-bit ring pointers");

struct frame { uint32_t step; uint16_t stop; uint8_t core, flags; };
static struct frame frames[OW];
static LINK_NEURON_T ring[K][LINK_OUT_RING];
static uint8_t pring[LINK_PROBE_RING];
/* per ring: written, released (the oldest unacknowledged frame starts there), next to send */
static uint16_t w_ptr[K], tail[K], s_ptr[K], count[K], p_w, p_tail, p_s;
static uint8_t head, ack, sent, collecting;
static uint32_t step_now, since;     /* since: the counter at the last send, ack or resend */
/* the frame going out: its descriptor, the SPIKES fields sent, a neuron's high byte due;
 * ``behind``: frames acknowledged before they were sent again */
static const struct frame *tx_f;
static uint8_t fixed[OUT_SPIKES_SIZE], n_fixed, hi, hi_due, behind;

void out_reset(void) {
    for (unsigned c = 0; c < K; c++) w_ptr[c] = tail[c] = s_ptr[c] = count[c] = 0;
    p_w = p_tail = p_s = 0;
    head = ack = sent = collecting = behind = 0;
    tx_f = 0;
}

int out_pending(void) { return head != ack || collecting; }
uint8_t hal_out_seq(void) { return ack; }

static void close_frame(unsigned core, unsigned flags) {
    struct frame *f = &frames[head++ & (OW - 1)];
    f->step = step_now;
    f->core = core;
    f->flags = flags;
    if (flags & F_PROBE) {
        f->stop = p_w;
    } else {
        f->stop = w_ptr[core];
        count[core] = 0;
    }
}

int out_room(void) {
    if ((uint8_t)(head - ack) > OW - LINK_FRAMES_PER_STEP) return 0;
    for (unsigned c = 0; c < K; c++)
        if ((uint16_t)(w_ptr[c] - tail[c]) > LINK_OUT_RING - LINK_N_NEURONS) return 0;
    return (uint16_t)(p_w - p_tail) <= LINK_PROBE_RING - LINK_N_PROBES * LINK_PROBE_PAYLOAD;
}

void out_begin(uint32_t step) {
    collecting = 1;
    step_now = step;
}

/* the spikes waiting in the SPIKE register (one at most: the chip waits for it) */
static void take_spikes(void) {
    uint32_t s;
    while ((s = REG(R_SPIKE)) >> 31) {
        unsigned c = K > 1 ? (s >> 16) & 0xFF : 0;     /* the register's core field */
        if (!collecting) continue;
        ring[c][w_ptr[c]++ & RMASK] = s;
        if (++count[c] == LINK_PER_FRAME) close_frame(c, 0);
    }
}

void out_probe_byte(uint8_t byte, int last) {
    pring[p_w++ & PMASK] = byte;
    if (last) close_frame(0, F_PROBE);
}

void out_end(void) {
    take_spikes();
    for (unsigned c = 0; c < K; c++)
        if (count[c] || c == K - 1) close_frame(c, c == K - 1 ? F_END : 0);
    collecting = 0;
}

/* back to the oldest unacknowledged frame (between frames only) */
static void rewind(void) {
    sent = ack;
    p_s = p_tail;
    for (unsigned c = 0; c < K; c++) s_ptr[c] = tail[c];
    since = REG(R_COUNTER);
}

void hal_out_ack(uint8_t next) {
    uint8_t dist = next - ack;
    if (!dist || dist > (uint8_t)(head - ack)) return;
    for (; ack != next; ack++) {        /* released: the rings' tails move past them */
        const struct frame *f = &frames[ack & (OW - 1)];
        if (f->flags & F_PROBE) p_tail = f->stop;
        else tail[f->core] = f->stop;
    }
    since = REG(R_COUNTER);
    behind = (uint8_t)(sent - ack) > (uint8_t)(head - ack);
}

static void start_frame(void) {
    const struct frame *f = tx_f = &frames[sent & (OW - 1)];
    if (f->flags & F_PROBE) {
        tx_header(sent, CMD_PROBE_DATA, (uint16_t)(f->stop - p_s));
        n_fixed = OUT_SPIKES_SIZE;
    } else {
        put32(fixed + OUT_SPIKES_STEP, f->step);
        fixed[OUT_SPIKES_CORE] = f->core;
        fixed[OUT_SPIKES_FLAGS] = f->flags & F_END ? STEP_END_OF_STEP : 0;
        tx_header(sent, CMD_SPIKES,
                  OUT_SPIKES_SIZE + 2 * (uint16_t)(f->stop - s_ptr[f->core]));
        n_fixed = 0;
    }
    hi_due = 0;
}

/* the frame's next payload byte, or -1 once it is all out */
static int next_byte(void) {
    const struct frame *f = tx_f;
    if (f->flags & F_PROBE) return p_s != f->stop ? pring[p_s++ & PMASK] : -1;
    if (n_fixed < OUT_SPIKES_SIZE) return fixed[n_fixed++];
    if (hi_due) {
        hi_due = 0;
        return hi;
    }
    unsigned c = f->core;
    if (s_ptr[c] == f->stop) return -1;
    unsigned n = ring[c][s_ptr[c]++ & RMASK];
    hi = n >> 8;
    hi_due = 1;
    return n & 0xFF;
}

/* the frame's bytes, ``most`` at a time (the loop stays quick to see a step's end), to the
 * encoder a few at once (a call of it costs as much as a few bytes); at the frame's end, the
 * next number */
static void send_bytes(unsigned most) {
    uint8_t bytes[16];
    unsigned n = 0;
    while (tx_f && most--) {
        int b = next_byte();
        if (b < 0) {
            tx_f = 0;
            sent++;
            since = REG(R_COUNTER);
        } else {
            bytes[n++] = b;
            if (n < sizeof bytes) continue;
        }
        tx_bytes(bytes, n);
        n = 0;
    }
    tx_bytes(bytes, n);
}

void out_flush(void) {
    while (tx_f) send_bytes(~0u);
}

void out_poll(void) {
    take_spikes();
    if (!tx_f) {
        if (behind) {
            behind = 0;
            rewind();
        }
        if (sent != head) {
            start_frame();
        } else if (sent != ack && REG(R_COUNTER) - since >= LINK_RESEND_CLOCKS) {
            count_event(EV_OUT_RESENT, (uint8_t)(sent - ack));
            rewind();
        }
    }
    send_bytes(16);
}
