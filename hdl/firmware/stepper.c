/* The stepper as firmware: hdl/stepper.py's run control and input queue, on the register
 * window of a FirmwareProcessor (hdl/firmware_link.py); the hal_* run-control functions of
 * link.h.
 *
 * A step t starts when nothing runs on the chip, the output buffer has room for a step and,
 * once the host has sent any INPUT (paced), the host has declared step t's input complete (an
 * INPUT with END_OF_STEP for t, or one for a later step); waiting for that input is a stall,
 * counted when the step starts. The step's queued input goes into the chip (INJECT), then
 * START arms the step timer, which starts the chip PERIOD clocks after the previous start.
 * At the barrier (ENDED) the due probes are written and the output buffer (outbuf.c) closes
 * the step's frames: the step is over.
 *
 * The input queue: an AXON entry is the input event (below 0x8000), a STEP mark three words
 * (MARK, the step's low and high halves). INPUT refuses what would leave fewer than the
 * hardware queue's reserve, so both take the same INPUTs. */
#include "link.h"
#include "board.h"
#include "config.h"
#include "protocol.h"
#include "registers.h"
#include "soc.h"

_Static_assert((LINK_INPUT_DEPTH & (LINK_INPUT_DEPTH - 1)) == 0, "a power of two");

#define MARK 0x8000u
#define QMASK (LINK_INPUT_DEPTH - 1u)
static uint16_t queue[LINK_INPUT_DEPTH];
static uint32_t q_write, q_commit, q_head;     /* words pushed, committed, taken */

static uint8_t in_step, running, pending, stop_req, stalled, paced, done, c_end;
static uint32_t left, run_step, c_step, period, busy_last, busy_max;

int stepper_active(void) { return running || pending || in_step; }

void stepper_reset(void) {
    in_step = running = pending = stop_req = stalled = paced = done = c_end = 0;
    left = run_step = c_step = period = busy_last = busy_max = 0;
    q_write = q_commit = q_head = 0;
}

static uint16_t peek(uint32_t k) { return queue[(q_head + k) & QMASK]; }

/* step t's queued input into the chip: every entry up to the first STEP mark of a later step */
static void feed(uint32_t t) {
    while (q_head != q_commit) {
        uint16_t w = peek(0);
        if (w & MARK) {
            if ((peek(1) | (uint32_t)peek(2) << 16) > t) return;
            q_head += 3;
        } else {
            while (REG(R_CONTROL) & S_INJECT_FULL) ;
            REG(R_INJECT) = w;
            q_head++;
        }
    }
}

void stepper_poll(void) {
    uint32_t s = REG(R_CONTROL);
    if (!in_step) {
        if (!(running || pending) || (s & S_CORE_BUSY) || !out_room()) return;
        uint32_t t = REG(R_CORE_STEP);
        /* paced: step t's input is complete below c_step, or at it with END_OF_STEP */
        if (paced && !(t < c_step || (t == c_step && c_end))) {
            stalled = 1;
            return;
        }
        if (stalled) count_event(EV_STALLS, 1);
        stalled = 0;
        in_step = 1;
        run_step = t;
        out_begin(t);
        feed(t);
        REG(R_CONTROL) = C_START;
        return;
    }
    if (!(s & S_ENDED)) return;
    /* the barrier: the busy clocks, the probes, the step's last frames; the step is over, a
     * STEP's, else one of the run's */
    busy_last = REG(R_BUSY_LAST);
    if (busy_last > busy_max) busy_max = busy_last;
    probes_serve(run_step);
    out_end();
    if (period && (REG(R_CONTROL) & S_PAST)) count_event(EV_TIMER_OVERRUNS, 1);
    if (running && left && !pending && --left == 0) running = 0;
    if (stop_req) running = stop_req = 0;
    pending = in_step = 0;
    done = 1;
}

int hal_idle(void) { return !stepper_active(); }
uint32_t hal_step(void) { return REG(R_CORE_STEP); }

void hal_run(uint32_t steps) {
    running = 1;
    left = steps;
    stop_req = 0;
    board_show();
}

uint32_t hal_step_once(uint32_t *busy) {
    pending = 1;
    done = 0;
    while (!done) board_wait();
    *busy = busy_last;
    return run_step;
}

void hal_stop(void) {
    if (!in_step) running = 0;
    else stop_req = 1;
    while (!hal_idle()) board_wait();
}

void hal_timer(uint32_t clocks) { REG(R_PERIOD) = period = clocks; }

void stepper_status(uint8_t *reply) {
    reply[REP_STATUS_STATE] = running ? RUN_RUNNING : pending ? RUN_STEPPING : RUN_IDLE;
    reply[REP_STATUS_PACED] = paced;
    put32(reply + REP_STATUS_STEP, REG(R_CORE_STEP));
    put32(reply + REP_STATUS_STEPS_LEFT, left);
    put32(reply + REP_STATUS_BUSY_LAST, busy_last);
    put32(reply + REP_STATUS_BUSY_MAX, busy_max);
}

/* INPUT: refused for a step that has started (or is below the queue's last INPUT), or when
 * the queue has no room for the axons and the step mark (the hardware queue's ``free``) */
unsigned hal_input_check(uint32_t step, unsigned n) {
    uint32_t floor = in_step ? run_step + 1 : REG(R_CORE_STEP);
    if (step < floor || (q_head != q_commit && step < c_step)) return NAK_ARGUMENT;
    if ((int)n >= (int)(LINK_INPUT_DEPTH - 2 - (q_write - q_head))) return NAK_RANGE;
    return 0;
}

static void push(uint16_t w) { queue[q_write++ & QMASK] = w; }

void hal_input_push(int is_step, uint32_t value) {
    if (is_step) {
        push(MARK);
        push(value);
        push(value >> 16);
    } else {
        push(value);
    }
}

void hal_input_end(int commit, uint32_t step, int end_of_step) {
    if (!commit) {
        q_write = q_commit;
        return;
    }
    /* END_OF_STEP of a step still queued adds to what earlier INPUTs declared */
    c_end = q_head != q_commit && step == c_step ? c_end | end_of_step : end_of_step;
    q_commit = q_write;
    c_step = step;
    paced = 1;
}
