/* What the firmware's parts share on the board (board.c, stepper.c, outbuf.c). */
#pragma once
#include <stdint.h>

/* frames.c: frames in and out, a frame at a time each way. rx_poll decodes the bytes come
 * so far and says whether a whole frame is waiting (it loads no byte while one is); rx_peek
 * gives it (header, payload), or 0; rx_release drops it; rx_take gives it to carry out, its
 * buffer the frame's until the next rx_take (the reply may be written into its payload). A
 * frame sent: tx_header (the payload's length), then that many bytes by tx_bytes */
int rx_poll(void);
const uint8_t *rx_peek(void);
void rx_release(void);
uint8_t *rx_take(void);
void tx_header(uint8_t seq, uint8_t cmd, uint16_t length);
void tx_bytes(const uint8_t *p, unsigned n);

/* board.c */
/* a step has ended at the chip's barrier: the due probes' PROBE_DATA into the output buffer */
void probes_serve(uint32_t step);
/* the stepper's and the output buffer's work, as far as it goes without waiting */
void board_work(void);
/* the same while a command waits for the stepper, taking the OUT_ACKs that arrive meanwhile */
void board_wait(void);
/* RUNNING: the SoC is not idle while a step is under way or output is unacknowledged */
void board_show(void);
/* ``n`` events for STATUS's counter ``k`` (EV_<NAME>, registers.h) */
void count_event(unsigned k, uint32_t n);

/* stepper.c */
void stepper_poll(void);
int stepper_active(void);           /* a run or a step under way */
void stepper_reset(void);           /* RESET: no run, an empty input queue, no timer */
void stepper_status(uint8_t *reply);   /* STATUS: state, paced, steps left, busy clocks */

/* outbuf.c */
void out_poll(void);                /* the spikes in, output frame bytes out, resends */
void out_flush(void);               /* the output frame going out, to its end */
int out_room(void);                 /* a whole step's frames fit */
int out_pending(void);              /* frames unacknowledged, or a step collecting */
void out_begin(uint32_t step);
void out_probe_byte(uint8_t byte, int last);
void out_end(void);                 /* the step's last frames */
void out_reset(void);
