/* The board behind the link firmware (hdl/firmware/link.c) in the host's tests: memories are
 * buffers the test gives, the nonce is the one the test sets (FakeBoard's), the counters are
 * FakeBoard's (NAKs and duplicates), and the run control is a stepper that is always idle
 * (the commands that use it are tested on the SoC, tests/soc). */
#include <string.h>
#include "link.h"
#include "protocol.h"

#define MAX_CORES 8
#define MAX_REGIONS 16
static uint8_t *memory[MAX_CORES][MAX_REGIONS];
static uint32_t next_nonce, naks, duplicates, step;

void fw_set_memory(unsigned core, unsigned region, uint8_t *buf) { memory[core][region] = buf; }
void fw_set_nonce(uint32_t value) { next_nonce = value; }

void hal_mem_read(unsigned core, unsigned region, uint32_t index, uint8_t *word, unsigned n) {
    memcpy(word, memory[core][region] + (size_t)index * n, n);
}
void hal_mem_write(unsigned core, unsigned region, uint32_t index, const uint8_t *word,
                   unsigned n) {
    memcpy(memory[core][region] + (size_t)index * n, word, n);
}
uint32_t hal_nonce(void) { return next_nonce; }

uint32_t hal_crc32(uint32_t crc, const uint8_t *p, unsigned n) {
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc >> 1 ^ (crc & 1 ? 0xEDB88320u : 0);
    }
    return crc;
}
uint32_t hal_mem_crc32(uint32_t crc, unsigned core, unsigned region, uint32_t index,
                       uint32_t count, unsigned n) {
    return hal_crc32(crc, memory[core][region] + (size_t)index * n, (size_t)count * n);
}
uint8_t hal_out_seq(void) { return 0; }
void hal_out_ack(uint8_t next) { (void)next; }    /* no output frames here */

void hal_status(uint8_t *reply) {
    put32(reply + REP_STATUS_STEP, step);
    put32(reply + REP_STATUS_NAKS, naks);
    put32(reply + REP_STATUS_DUPLICATES, duplicates);
}
void hal_event(unsigned event) {
    if (event == LINK_EVENT_NAK) naks++;
    if (event == LINK_EVENT_DUPLICATE) duplicates++;
}
void hal_reset(void) { naks = 0; duplicates = 0; }

int hal_idle(void) { return 1; }
uint32_t hal_step(void) { return step; }
void hal_run(uint32_t steps) { step += steps; }
uint32_t hal_step_once(uint32_t *busy) { *busy = 1; return step++; }
void hal_stop(void) {}
void hal_timer(uint32_t period) { (void)period; }
unsigned hal_input_check(uint32_t s, unsigned n) { (void)n; return s < step ? NAK_ARGUMENT : 0; }
void hal_input_push(int is_step, uint32_t value) { (void)is_step; (void)value; }
void hal_input_end(int commit, uint32_t s, int end) { (void)commit; (void)s; (void)end; }
void hal_probe(unsigned probe, unsigned core, unsigned region, unsigned period, uint32_t index,
               unsigned count) {
    (void)probe; (void)core; (void)region; (void)period; (void)index; (void)count;
}
