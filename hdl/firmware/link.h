/* The link's command processor as firmware (docs/protocol.md section 3).
 *
 * The hardware around it frames and checks (UART, COBS, CRC): link_handle() gets a frame's
 * header and payload and writes the reply's. The board behind it is reached through the hal_*
 * functions: a ControlCPU's register window on the board, plain C in the host's tests. */
#pragma once
#include <stdint.h>

/* one frame: header (HDR_SIZE bytes) and payload in; the reply's header and payload out
 * (at most LINK_MAX_PAYLOAD bytes; ``out`` may be ``payload``: one frame buffer serves).
 * Returns 1 when there is a reply, 0 when there is none (OUT_ACK frames, which the output
 * side takes). */
int link_handle(const uint8_t *hdr, const uint8_t *payload, uint8_t *out_hdr, uint8_t *out);
/* power-on state: unsynced, counters cleared, a new nonce (hal_nonce) */
void link_reset(void);

/* the board */
void hal_mem_read(unsigned core, unsigned region, uint32_t index, uint8_t *word, unsigned n);
void hal_mem_write(unsigned core, unsigned region, uint32_t index, const uint8_t *word,
                   unsigned n);
uint32_t hal_nonce(void);           /* a new session nonce, at every reset */
uint8_t hal_out_seq(void);          /* the number of the oldest unacknowledged output frame */
void hal_status(uint8_t *reply);    /* the STATUS fields the board keeps, into the reply */
