/* What board.c and stepper.c share on the board: the step's probes and the stepper's work. */
#pragma once
#include <stdint.h>

/* a step has ended at the chip's barrier: the due probes' PROBE_DATA into the output buffer */
void probes_serve(uint32_t step);
/* the stepper's work, as far as it goes without waiting (board.c's loops call it) */
void stepper_poll(void);
/* RESET: no run, no step, an empty input queue, no timer */
void stepper_reset(void);
/* STATUS: the run state, paced, steps left, busy clocks, into the reply */
void stepper_status(uint8_t *reply);
