/* The link firmware on the board: the hal_* functions of link.h over the register window of
 * a FirmwareProcessor (hdl/firmware_link.py), and the loop that takes frames in and sends the
 * replies out. */
#include "link.h"
#include "config.h"
#include "protocol.h"
#include "registers.h"

#define REG(k) (*(volatile uint32_t *)(0x80000000u + 4u * (k)))

static uint8_t frame[LINK_MAX_PAYLOAD + 1];     /* the request, then its reply */

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

void hal_mem_read(unsigned core, unsigned region, uint32_t index, uint8_t *word, unsigned n) {
    REG(R_MEM_ADDR) = chip_address(core, region, index);
    REG(R_MEM_GO) = 0;
    while (REG(R_MEM_STATUS) & 1) ;
    for (unsigned k = 0; k < n; k += 4) {
        uint32_t w = REG(R_MEM_DATA + k / 4);
        for (unsigned j = 0; j < 4 && k + j < n; j++) word[k + j] = w >> (8 * j);
    }
}

void hal_mem_write(unsigned core, unsigned region, uint32_t index, const uint8_t *word,
                   unsigned n) {
    for (unsigned k = 0; k < 4 * R_MEM_WORDS; k += 4) {
        uint32_t w = 0;
        for (unsigned j = 0; j < 4 && k + j < n; j++) w |= (uint32_t)word[k + j] << (8 * j);
        REG(R_MEM_DATA + k / 4) = w;
    }
    REG(R_MEM_ADDR) = chip_address(core, region, index);
    REG(R_MEM_GO) = 1;
    while (REG(R_MEM_STATUS) & 1) ;
}

uint32_t hal_nonce(void) { return REG(R_COUNTER); }
uint8_t hal_out_seq(void) { return 0; }
void hal_status(uint8_t *reply) { (void)reply; }

int main(void) {
    uint8_t hdr[HDR_SIZE], out_hdr[HDR_SIZE];
    link_reset();
    for (;;) {
        uint32_t h;
        while (!((h = REG(R_RX_HEADER)) >> 31)) ;
        unsigned len = REG(R_RX_LENGTH);
        REG(R_RX_TAKE) = 0;
        hdr[HDR_VERSION] = h; hdr[HDR_SEQ] = h >> 8; hdr[HDR_CMD] = h >> 16;
        hdr[HDR_LENGTH] = len; hdr[HDR_LENGTH + 1] = len >> 8;
        for (unsigned k = 0; k < len; k++) {
            uint32_t b;
            while (!((b = REG(R_RX_BYTE)) & 0x100)) ;
            if (k < sizeof frame) frame[k] = b;
        }
        if (!link_handle(hdr, frame, out_hdr, frame)) continue;
        unsigned n = out_hdr[HDR_LENGTH] | out_hdr[HDR_LENGTH + 1] << 8;
        while (REG(R_TX_STATUS) & 1) ;
        REG(R_TX_HEADER) = out_hdr[HDR_SEQ] | out_hdr[HDR_CMD] << 8 | (uint32_t)n << 16;
        for (unsigned k = 0; k < n; k++) {
            while (REG(R_TX_STATUS) & 2) ;
            REG(R_TX_BYTE) = frame[k];
        }
    }
}
