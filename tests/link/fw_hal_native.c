/* The board behind the link firmware (hdl/firmware/link.c) in the host's tests: memories are
 * buffers the test gives, the nonce is the one the test sets (FakeBoard's). */
#include <string.h>
#include "link.h"

#define MAX_CORES 8
#define MAX_REGIONS 16
static uint8_t *memory[MAX_CORES][MAX_REGIONS];
static uint32_t next_nonce;

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
uint8_t hal_out_seq(void) { return 0; }
void hal_status(uint8_t *reply) { (void)reply; }
