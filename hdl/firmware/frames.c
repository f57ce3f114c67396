/* The link's framing as firmware (docs/protocol.md section 2): COBS with 0x00 delimiters, the
 * header and the CRC-32 trailer of every frame, over the two byte FIFOs of a
 * FirmwareProcessor's window (hdl/firmware_link.py), where the hardware link has its Deframer
 * and Framer (hdl/framing.py).
 *
 * Receiving: the bytes are COBS-decoded and their CRC taken as they come (rx_poll), into one
 * of two frame buffers; the other holds the frame being carried out (rx_take swaps them), so
 * the frame after it is decoded meanwhile (a waiting STEP takes its OUT_ACKs so). At the
 * delimiter the frame is checked as the Deframer checks one, and counted as it counts one: a
 * COBS block cut short, a byte lost before it (RX_LOST), more bytes than the largest frame, a
 * length that disagrees with the header's are frame errors; then a CRC that fails. Once a
 * frame is whole, no byte is loaded until it is taken: a load that finds the receive FIFO
 * empty tells the window the firmware is at rest.
 *
 * Sending: a frame's bytes go through the CRC and into a COBS block here; a block goes into the
 * transmit FIFO whole once its length (its code byte) is known, at a zero byte, at 254 bytes
 * or at the frame's end. The bytes equal cobs.encode(header + payload + crc) + b"\0".
 *
 * Both take the CRC in the window's CRC register, a byte a store: each sets it to its own
 * CRC when it begins and saves it when it returns, so the two (and hal_crc32) share it. The
 * decoder's and the encoder's state lives in locals while they work (SERV reaches RAM
 * through a load or a store of 30 clocks or more). */
#include "link.h"
#include "board.h"
#include "config.h"
#include "protocol.h"
#include "registers.h"

#define RX_CAP (HDR_SIZE + LINK_MAX_PAYLOAD + PROTO_CRC_BYTES)
#define BLOCK 254                               /* data bytes of a COBS block at most */

static uint8_t buffers[2][RX_CAP];
static uint8_t *decoding = buffers[0], *taken = buffers[1];
static uint8_t whole;                           /* ``decoding`` holds a whole frame */
/* the decoder between two calls: bytes of the frame, data bytes left in the COBS block (0:
 * the next is a code byte), a zero due before the next block, in a frame, a byte lost in it */
static unsigned d_pos, d_left;
static uint32_t d_crc = 0xFFFFFFFFu;
static uint8_t d_zero, d_in, d_lost;

int rx_poll(void) {
    if (whole) return 1;
    uint32_t w = REG(R_RX_BYTE);
    if (!(w & RX_VALID)) return 0;
    uint8_t *buf = decoding;
    unsigned pos = d_pos, left = d_left, zero = d_zero, in = d_in, lost = d_lost;
    REG(R_CRC) = d_crc;
    for (; w & RX_VALID; w = REG(R_RX_BYTE)) {
        lost |= (w & RX_LOST) != 0;
        unsigned b = w & 0xFF;
        if (b == 0) {                           /* the delimiter */
            if (in) {
                unsigned n = pos - (HDR_SIZE + PROTO_CRC_BYTES);
                if (left || lost || pos < HDR_SIZE + PROTO_CRC_BYTES || pos > RX_CAP
                        || get16(buf + HDR_LENGTH) != n)
                    count_event(EV_FRAME_ERRORS, 1);
                else if (REG(R_CRC) != PROTO_CRC_RESIDUE)
                    count_event(EV_CRC_ERRORS, 1);
                else
                    whole = 1;
            }
            pos = left = zero = in = lost = 0;
            REG(R_CRC) = 0xFFFFFFFFu;
            if (whole) break;
            continue;
        }
        unsigned data = b;
        if (left == 0) {                        /* a code byte: the zero the last implies */
            unsigned due = zero;
            in = 1;
            left = b - 1;
            zero = b != 0xFF;
            if (!due) continue;
            data = 0;
        } else {
            left--;
        }
        REG(R_CRC_BYTE) = data;
        if (pos < RX_CAP) buf[pos] = data;
        pos++;
    }
    d_pos = pos; d_left = left; d_zero = zero; d_in = in; d_lost = lost;
    d_crc = REG(R_CRC);
    return whole;
}

const uint8_t *rx_peek(void) { return rx_poll() ? decoding : 0; }

void rx_release(void) { whole = 0; }

uint8_t *rx_take(void) {
    uint8_t *frame = decoding;
    decoding = taken;
    taken = frame;
    whole = 0;
    return frame;
}

/* the encoder: the open block's bytes, the frame's bytes still to come, its CRC register */
static uint8_t block[BLOCK];
static unsigned t_len, t_left;
static uint32_t t_crc;

/* a block into the transmit FIFO: its code byte, then its ``n`` bytes */
static void put_block(unsigned code, const uint8_t *p, unsigned n) {
    while (REG(R_TX_STATUS) + n >= TX_FIFO_BYTES) ;
    REG(R_TX_BYTE) = code;
    while (n--) REG(R_TX_BYTE) = *p++;
}

/* ``n`` bytes of the frame through the CRC and into blocks, none of them its last */
static void encode(const uint8_t *p, unsigned n) {
    unsigned len = t_len;
    uint8_t *blk = block;
    REG(R_CRC) = t_crc;
    while (n--) {
        uint8_t b = *p++;
        REG(R_CRC_BYTE) = b;
        if (b) {
            blk[len++] = b;
            if (len < BLOCK) continue;
        }
        put_block(len + 1, blk, len);
        len = 0;
    }
    t_len = len;
    t_crc = REG(R_CRC);
}

/* the CRC, the last block and the delimiter */
static void finish(void) {
    uint32_t crc = ~t_crc;
    uint8_t tail[PROTO_CRC_BYTES];
    put32(tail, crc);
    encode(tail, PROTO_CRC_BYTES - 1);
    uint8_t b = tail[PROTO_CRC_BYTES - 1];
    unsigned len = t_len;
    if (b) block[len++] = b;
    put_block(len + 1, block, len);
    if (!b) put_block(1, 0, 0);                 /* the frame ended on a zero: an empty block */
    put_block(0, 0, 0);                         /* the delimiter */
    t_len = 0;
}

void tx_header(uint8_t seq, uint8_t cmd, uint16_t length) {
    uint8_t hdr[HDR_SIZE];
    hdr[HDR_VERSION] = PROTO_VERSION;
    hdr[HDR_SEQ] = seq;
    hdr[HDR_CMD] = cmd;
    put16(hdr + HDR_LENGTH, length);
    t_len = 0;
    t_crc = 0xFFFFFFFFu;
    encode(hdr, HDR_SIZE);
    t_left = length;
    if (!length) finish();
}

void tx_bytes(const uint8_t *p, unsigned n) {
    if (!n) return;
    encode(p, n);
    t_left -= n;
    if (!t_left) finish();
}
