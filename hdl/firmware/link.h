/* The link's command processor as firmware (docs/protocol.md section 3).
 *
 * What is around it frames and checks (COBS, CRC: the hardware's Deframer and Framer, or
 * frames.c on a FirmwareProcessor): link_handle() gets a frame's header and payload and
 * writes the reply's. The board behind it is reached through the hal_*
 * functions: a ControlCPU's register window on the board (board.c), plain C in the host's
 * tests. */
#pragma once
#include <stdint.h>

/* link_handle's results */
#define LINK_NONE 0                 /* no reply (OUT_ACK frames: hal_out_ack) */
#define LINK_REPLY 1                /* a reply in out_hdr and out */
#define LINK_REPLY_RESET 2          /* a reply, then hal_reset() once it has been sent */

/* one frame: header (HDR_SIZE bytes) and payload in; the reply's header and payload out
 * (at most LINK_MAX_PAYLOAD bytes; ``out`` may be ``payload``: one frame buffer serves).
 * A RESET resets the link's own state (link_reset) before it returns. */
int link_handle(const uint8_t *hdr, const uint8_t *payload, uint8_t *out_hdr, uint8_t *out);
/* little-endian fields of frames and replies (link.c, board.c and the tests' board) */
static inline uint32_t get32(const uint8_t *p) {
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}
static inline void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }

/* power-on state of the link: unsynced, no history */
void link_reset(void);
/* the bytes of a word of link region ``region`` on the wire (0: no such region) */
unsigned link_word_bytes(unsigned region);

/* -- the board ---------------------------------------------------------------------------- */
/* the chip's memories: word ``index`` of link region ``region`` of ``core``, ``n`` bytes */
void hal_mem_read(unsigned core, unsigned region, uint32_t index, uint8_t *word, unsigned n);
void hal_mem_write(unsigned core, unsigned region, uint32_t index, const uint8_t *word,
                   unsigned n);
uint32_t hal_nonce(void);           /* the session nonce (drawn anew at every reset) */
/* the protocol's CRC-32 (reflected, zlib's) register ``crc`` after ``n`` more bytes: start
 * from 0xFFFFFFFF; the CRC is the register's complement */
uint32_t hal_crc32(uint32_t crc, const uint8_t *p, unsigned n);
/* ``hal_crc32`` continued over ``count`` words of ``n`` bytes from word ``index`` of link
 * region ``region`` of ``core`` (a REGION_CRC: the words go from the chip to the CRC) */
uint32_t hal_mem_crc32(uint32_t crc, unsigned core, unsigned region, uint32_t index,
                       uint32_t count, unsigned n);
uint8_t hal_out_seq(void);          /* the number of the oldest unacknowledged output frame */
void hal_out_ack(uint8_t next);     /* OUT_ACK: output frames before ``next`` acknowledged */
/* the STATUS fields the board keeps (every one but ``cmd``), into the reply */
void hal_status(uint8_t *reply);
#define LINK_EVENT_NAK 1
#define LINK_EVENT_DUPLICATE 2
void hal_event(unsigned event);     /* counted for STATUS (``naks``, ``duplicates``) */
/* RESET, after its reply has gone: the run state, the input queue, the probes, the output
 * frames and the link's counters of the board (the chip's memories are kept) */
void hal_reset(void);

/* run control (the stepper, hdl/stepper.py) */
int hal_idle(void);                 /* no run, no step pending or under way */
uint32_t hal_step(void);            /* the chip's step counter */
void hal_run(uint32_t steps);       /* 0: until STOP */
uint32_t hal_step_once(uint32_t *busy);   /* one step; returns its number and busy clocks */
void hal_stop(void);                /* returns once stopped */
void hal_timer(uint32_t period);    /* clocks from a step's start to the next one's; 0: none */
/* INPUT: ``n`` axons for ``step``: 0, or NAK_ARGUMENT (a step already closed) or NAK_RANGE
 * (no room in the queue) */
unsigned hal_input_check(uint32_t step, unsigned n);
void hal_input_push(int is_step, uint32_t value);   /* a STEP(step) mark or an AXON entry */
void hal_input_end(int commit, uint32_t step, int end_of_step);   /* commit or abort them */
/* PROBE: the probe's settings, as checked (the board reads the due probes at each step's end) */
void hal_probe(unsigned probe, unsigned core, unsigned region, unsigned period, uint32_t index,
               unsigned count);
