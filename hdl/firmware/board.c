/* The link firmware on the board: the hal_* functions of link.h over the register window of
 * a FirmwareProcessor (hdl/firmware_link.py) but the run control (stepper.c) and the output
 * frames (outbuf.c), the probes, and the loop that takes frames in (frames.c), sends the
 * replies out and lets the stepper and the output buffer work between them. CONTROL's pulses come a clock after the store that makes them; a load comes several
 * clocks after any store, so what a pulse changes shows in the next load. */
#include "link.h"
#include "board.h"
#include "config.h"
#include "protocol.h"
#include "registers.h"

/* the chip address of word ``index`` of ``region`` of ``core`` (hdl/link.py chip_address) */
static uint32_t chip_address(unsigned core, unsigned region, uint32_t index) {
    uint32_t local;
    if (region & 8)             /* the routing tables: TableRegion ROUTE_INDEX 8, ROUTE_DEST 9 */
        local = (index & ((1u << LINK_ENTRY_BITS) - 1))
                | (uint32_t)(region == 9) << LINK_ENTRY_BITS;
    else
        local = (index & ((1u << LINK_INDEX_BITS) - 1)) | (uint32_t)(region & 7) << LINK_INDEX_BITS;
    local &= (1u << LINK_LOCAL_BITS) - 1;
    return local | (uint32_t)(region >> 3 & 1) << LINK_LOCAL_BITS
           | (uint32_t)core << (LINK_LOCAL_BITS + 1);
}

/* The STATUS counters (EV_<NAME>, STATUS's order): the UART's errors and the overruns from
 * the window's 16-bit LINE counters, added up here often enough that they never wrap unseen
 * (in the loop, and every 256 words of a long command, mem_request); the others counted
 * here (the CRC and frame errors by frames.c). */
static uint32_t counters[N_COUNTERS], line_seen;

void count_event(unsigned k, uint32_t n) { counters[k] += n; }

static void line_poll(void) {
    uint32_t now = REG(R_LINE), was = line_seen;
    if (now == was) return;
    counters[EV_UART_ERRORS] += (uint16_t)(now - was);
    counters[EV_OVERRUNS] += (uint16_t)((now >> 16) - (was >> 16));
    line_seen = now;
}

/* one request on the chip's memory port at chip address ``addr`` (region index ``index``),
 * a read's answer then in the MEM_DATA registers. A long command (a REGION_CRC, a READ,
 * GENERATORS) walks the indices in order: at every 256th index it also polls the line's
 * counters. */
static inline void mem_go(uint32_t addr, uint32_t index, int write) {
    REG(R_MEM_ADDR) = addr;
    REG(R_MEM_GO) = write;
    while (REG(R_MEM_STATUS) & 1) ;
    if (!(index & 255)) line_poll();
}

/* As a tail call of a function of its own: a call before the request made every request
 * save its arguments (+20 instructions, +20% on an upload's clocks), and a count of requests
 * in RAM cost 6 more a request (+5%). */
__attribute__((noinline))
static void mem_request(unsigned core, unsigned region, uint32_t index, int write) {
    mem_go(chip_address(core, region, index), index, write);
}

void hal_mem_read(unsigned core, unsigned region, uint32_t index, uint8_t *word, unsigned n) {
    mem_request(core, region, index, 0);
    /* shifts by a constant 8: SERV shifts a bit a clock */
    for (unsigned k = 0; k < n; k += 4) {
        uint32_t w = REG(R_MEM_DATA + (k >> 2));
        for (unsigned j = k; j < n && j < k + 4; j++) {
            word[j] = w;
            w >>= 8;
        }
    }
}

void hal_mem_write(unsigned core, unsigned region, uint32_t index, const uint8_t *word,
                   unsigned n) {
    /* the data words the region's word reaches (the chip keeps no bit above its width) */
    for (unsigned k = 0; k < n; k += 4) {
        unsigned top = n < k + 4 ? n : k + 4;
        uint32_t w = 0;
        while (top-- > k) w = w << 8 | word[top];
        REG(R_MEM_DATA + (k >> 2)) = w;
    }
    mem_request(core, region, index, 1);
}

uint32_t hal_nonce(void) { return REG(R_NONCE); }

/* the window's CRC register: set, a byte a store, read back (frames.c saves its own CRCs in
 * it the same way, so no CRC is left in it between two calls) */
uint32_t hal_crc32(uint32_t crc, const uint8_t *p, unsigned n) {
    REG(R_CRC) = crc;
    while (n--) REG(R_CRC_BYTE) = *p++;
    return REG(R_CRC);
}

/* One loop for a REGION_CRC's words: the CRC register set once, each word's bytes stored from
 * MEM_DATA into CRC_BYTE (which takes the low byte), the chip address counted on (the words of
 * a region's range are consecutive addresses: link.c checks the range). Against a call of
 * hal_mem_read and hal_crc32 a word, no word buffer, no address computed anew, no CRC saved and
 * loaded a word: 1,919 clocks a word on tiny-fw instead of 4,810 (bench/link.py). */
uint32_t hal_mem_crc32(uint32_t crc, unsigned core, unsigned region, uint32_t index,
                       uint32_t count, unsigned n) {
    uint32_t addr = chip_address(core, region, index);
    REG(R_CRC) = crc;
    for (uint32_t end = index + count; index != end; index++, addr++) {
        mem_go(addr, index, 0);
        for (unsigned k = 0; k < n; k += 4) {
            uint32_t w = REG(R_MEM_DATA + (k >> 2));
            for (unsigned j = k; j < n && j < k + 4; j++) {
                REG(R_CRC_BYTE) = w;
                w >>= 8;
            }
        }
    }
    return REG(R_CRC);
}

void hal_status(uint8_t *reply) {
    static const uint8_t offsets[N_COUNTERS] = COUNTER_OFFSETS;
    stepper_status(reply);
    line_poll();
    for (unsigned k = 0; k < N_COUNTERS; k++) put32(reply + offsets[k], counters[k]);
}

void hal_event(unsigned event) {
    count_event(event == LINK_EVENT_NAK ? EV_NAKS : EV_DUPLICATES, 1);
}

/* The probes (the PROBE command's settings, as hdl/probe.py's ProbeEngine keeps them): a
 * probe set with period p is due at the first step that ends after the command, then every
 * p-th step; at a step's end each due probe writes one PROBE_DATA payload (step, probe, core,
 * region, index, then its words at their wire width) into the output buffer (outbuf.c). */
struct probe { uint8_t core, region, period, countdown; uint32_t index; uint16_t count; };
static struct probe probes[LINK_N_PROBES];

static void probe_word(uint32_t v, unsigned n) {
    for (unsigned k = 0; k < n; k++) out_probe_byte(v >> (8 * k), 0);
}

/* a step has ended at the barrier: its due probes */
void probes_serve(uint32_t step) {
    for (unsigned p = 0; p < LINK_N_PROBES; p++) {
        struct probe *pr = &probes[p];
        if (!pr->period) continue;
        int due = pr->countdown == 0;
        pr->countdown = due ? pr->period - 1 : pr->countdown - 1;
        if (!due) continue;
        probe_word(step, 4);
        out_probe_byte(p, 0);
        out_probe_byte(pr->core, 0);
        out_probe_byte(pr->region, 0);
        probe_word(pr->index, 4);
        unsigned wb = link_word_bytes(pr->region);
        uint8_t word[LINK_MAX_WORD_BYTES];
        for (unsigned w = 0; w < pr->count; w++) {
            hal_mem_read(pr->core, pr->region, pr->index + w, word, wb);
            for (unsigned k = 0; k < wb; k++)
                out_probe_byte(word[k], w + 1 == pr->count && k + 1 == wb);
        }
    }
}

void hal_probe(unsigned probe, unsigned core, unsigned region, unsigned period, uint32_t index,
               unsigned count) {
    struct probe *pr = &probes[probe];
    pr->core = core; pr->region = region; pr->period = period; pr->countdown = 0;
    pr->index = index; pr->count = count;
}

void hal_reset(void) {
    for (unsigned p = 0; p < LINK_N_PROBES; p++) probes[p].period = 0;
    stepper_reset();
    out_reset();
    for (unsigned k = N_KEPT_COUNTERS; k < N_COUNTERS; k++) counters[k] = 0;   /* the link's */
    REG(R_CONTROL) = C_RESET;
    board_show();
}

void board_show(void) {
    static uint8_t shown;
    uint8_t now = stepper_active() || out_pending();
    if (now != shown) REG(R_RUNNING) = shown = now;
}

void board_work(void) {
    line_poll();
    out_poll();
    stepper_poll();
    board_show();
}

void board_wait(void) {
    board_work();
    const uint8_t *f = rx_peek();
    if (f && f[HDR_CMD] == CMD_OUT_ACK) {                 /* as link_handle takes one */
        if (get16(f + HDR_LENGTH) == 1) hal_out_ack(f[HDR_SIZE]);
        rx_release();
    }
}

int main(void) {
    uint8_t out_hdr[HDR_SIZE];
    link_reset();
    for (;;) {
        while (!rx_poll()) board_work();
        uint8_t *frame = rx_take();                  /* the request, then its reply */
        int done = link_handle(frame, frame + HDR_SIZE, out_hdr, frame + HDR_SIZE);
        if (done == LINK_NONE) continue;
        unsigned n = get16(out_hdr + HDR_LENGTH);
        out_flush();                                 /* the output frame going out first */
        tx_header(out_hdr[HDR_SEQ], out_hdr[HDR_CMD], n);
        tx_bytes(frame + HDR_SIZE, n);
        if (done == LINK_REPLY_RESET) hal_reset();   /* once the reply has gone */
    }
}
