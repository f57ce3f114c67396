/* What the firmware's parts share on the board (board.c, stepper.c, outbuf.c). */
#pragma once
#include <stdint.h>

/* board.c: the reply and output frames go out through the same slots, a frame at a time */
void tx_header(uint8_t seq, uint8_t cmd, uint16_t length);
void tx_byte(uint8_t byte);
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
