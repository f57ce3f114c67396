/* The link's command processor as firmware: sequence numbers, the reply history, HELLO,
 * STATUS, RESET and the memory commands (WRITE, READ, REGION_CRC) of docs/protocol.md, as
 * tests/link/linkpeer.py's FakeBoard (the executable spec) does them. Commands the firmware
 * does not carry out yet are refused with NAK(COMMAND), as FakeBoard refuses them.
 *
 * The history keeps the reply of each of the last LINK_WINDOW commands; those of HELLO,
 * STATUS and READ (long, and free of side effects) are made again for a duplicate instead, as
 * the hardware command processor does (hdl/link.py): the record keeps the command (and a
 * READ's request), so a duplicate number gets the reply of the command that had it. */
#include "link.h"
#include "config.h"
#include "protocol.h"

#define RECORD_BYTES 12
#define MAX_WORD_BYTES 16    /* the widest region word (config.h's table is checked) */

struct region { uint8_t id, word_bytes; uint32_t depth; };
static const struct region regions[LINK_N_REGIONS] = LINK_REGION_TABLE;
_Static_assert(LINK_MAX_WORD_BYTES <= MAX_WORD_BYTES, "a region word is too wide");
static const uint8_t hello_template[REP_HELLO_SIZE] = LINK_HELLO_TEMPLATE;

/* a reply as kept: its bytes, or (regen) the command and a READ's request to make it again */
struct record { uint8_t len, nak, regen, cmd; uint8_t bytes[RECORD_BYTES]; };
_Static_assert(REQ_READ_SIZE <= RECORD_BYTES, "a READ request must fit a record");
static struct record history[LINK_WINDOW];

static uint8_t synced, expected, filled;
static uint8_t last_hello_seq;
static uint16_t last_hello_len;
static uint32_t last_hello_crc;   /* the last HELLO: its number, length and payload's CRC */
static uint32_t nonce, naks, duplicates;

static uint32_t get32(const uint8_t *p) {
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static void put32(uint8_t *p, uint32_t v) {
    p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}
static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }

void link_reset(void) {
    synced = 0; expected = 0; filled = 0; last_hello_len = 0xFFFF;
    naks = 0; duplicates = 0;
    nonce = hal_nonce();
}

static unsigned nak(const uint8_t *hdr, uint8_t code, uint8_t *out) {
    naks++;
    out[NAKP_CMD] = hdr[HDR_CMD];
    out[NAKP_CODE] = code;
    out[NAKP_EXPECTED] = expected;
    return NAKP_SIZE;
}

static const struct region *find_region(uint8_t id) {
    for (unsigned k = 0; k < LINK_N_REGIONS; k++)
        if (regions[k].id == id) return &regions[k];
    return 0;
}

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, unsigned n) {
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return crc;
}

/* WRITE, READ, REGION_CRC: the window into the region is checked first. *is_nak tells
 * whether the reply is a refusal. */
static unsigned memory_command(const uint8_t *hdr, const uint8_t *p, unsigned len,
                               uint8_t *out, uint8_t *is_nak) {
    /* the request's fields are read before the reply is written: ``out`` may be ``p`` */
    uint8_t cmd = hdr[HDR_CMD], core = p[REQ_READ_CORE];
    *is_nak = 1;
    if (core >= LINK_N_CORES) return nak(hdr, NAK_CORE, out);
    const struct region *r = find_region(p[REQ_READ_REGION]);
    if (!r) return nak(hdr, NAK_REGION, out);
    unsigned wb = r->word_bytes;
    uint32_t index = get32(p + REQ_READ_INDEX), count;
    if (cmd == CMD_WRITE) {
        unsigned words = len - REQ_WRITE_SIZE;
        if (words % wb) return nak(hdr, NAK_LENGTH, out);
        count = words / wb;
    } else {
        count = cmd == CMD_READ ? get16(p + REQ_READ_COUNT) : get32(p + REQ_REGION_CRC_COUNT);
    }
    if (index > r->depth || count > r->depth - index) return nak(hdr, NAK_RANGE, out);
    *is_nak = 0;
    out[0] = cmd;
    if (cmd == CMD_WRITE) {
        for (uint32_t k = 0; k < count; k++)
            hal_mem_write(core, r->id, index + k, p + REQ_WRITE_SIZE + k * wb, wb);
        return REP_WRITE_SIZE;
    }
    if (cmd == CMD_READ) {
        if (count * wb + REP_READ_SIZE > LINK_MAX_PAYLOAD) {
            *is_nak = 1;
            return nak(hdr, NAK_RANGE, out);
        }
        for (uint32_t k = 0; k < count; k++)
            hal_mem_read(core, r->id, index + k, out + REP_READ_SIZE + k * wb, wb);
        return REP_READ_SIZE + count * wb;
    }
    uint32_t crc = 0xFFFFFFFFu;
    uint8_t word[MAX_WORD_BYTES];
    for (uint32_t k = 0; k < count; k++) {
        hal_mem_read(core, r->id, index + k, word, wb);
        crc = crc32_update(crc, word, wb);
    }
    put32(out + REP_REGION_CRC_CRC, ~crc);
    return REP_REGION_CRC_SIZE;
}

static unsigned hello_reply(uint8_t *out) {
    for (unsigned k = 0; k < REP_HELLO_SIZE; k++) out[k] = hello_template[k];
    out[REP_HELLO_OUT_SEQ] = hal_out_seq();
    put32(out + REP_HELLO_NONCE, nonce);
    return REP_HELLO_SIZE;
}

static unsigned status_reply(uint8_t *out) {
    for (unsigned k = 0; k < REP_STATUS_SIZE; k++) out[k] = 0;
    out[0] = CMD_STATUS;
    hal_status(out);
    put32(out + REP_STATUS_NAKS, naks);
    put32(out + REP_STATUS_DUPLICATES, duplicates);
    return REP_STATUS_SIZE;
}

static int exact(uint8_t cmd, unsigned len) {
    switch (cmd) {
    case CMD_HELLO: return len == REQ_HELLO_SIZE;
    case CMD_READ: return len == REQ_READ_SIZE;
    case CMD_REGION_CRC: return len == REQ_REGION_CRC_SIZE;
    case CMD_STATUS: return len == REQ_STATUS_SIZE;
    case CMD_RESET: return len == REQ_RESET_SIZE;
    case CMD_WRITE: return len >= REQ_WRITE_SIZE;
    }
    return 0;
}

/* The reply to a command that is carried out (or made again for a duplicate, ``again``). */
static unsigned execute(const uint8_t *hdr, const uint8_t *p, unsigned len, uint8_t *out,
                        uint8_t *is_nak) {
    uint8_t cmd = hdr[HDR_CMD];
    *is_nak = 1;
    if (cmd != CMD_HELLO && cmd != CMD_WRITE && cmd != CMD_READ && cmd != CMD_REGION_CRC
            && cmd != CMD_STATUS && cmd != CMD_RESET)
        return nak(hdr, NAK_COMMAND, out);
    if (!exact(cmd, len)) return nak(hdr, NAK_LENGTH, out);
    *is_nak = 0;
    switch (cmd) {
    case CMD_HELLO: return hello_reply(out);
    case CMD_STATUS: return status_reply(out);
    case CMD_RESET:
        out[0] = cmd;
        return REP_RESET_SIZE;
    }
    return memory_command(hdr, p, len, out, is_nak);
}

static void reply_header(const uint8_t *hdr, uint8_t is_nak, unsigned n, uint8_t *out_hdr) {
    out_hdr[HDR_VERSION] = PROTO_VERSION;
    out_hdr[HDR_SEQ] = hdr[HDR_SEQ];
    out_hdr[HDR_CMD] = is_nak ? CMD_NAK : CMD_ACK;
    put16(out_hdr + HDR_LENGTH, n);
}

int link_handle(const uint8_t *hdr, const uint8_t *payload, uint8_t *out_hdr, uint8_t *out) {
    uint8_t cmd = hdr[HDR_CMD], seq = hdr[HDR_SEQ];
    unsigned len = get16(hdr + HDR_LENGTH);
    if (cmd == CMD_OUT_ACK) return 0;
    if (hdr[HDR_VERSION] != PROTO_VERSION) {
        reply_header(hdr, 1, nak(hdr, NAK_VERSION, out), out_hdr);
        return 1;
    }
    uint8_t dist = (uint8_t)(expected - seq);
    int dup = synced && dist >= 1 && dist <= LINK_WINDOW;
    int stored = dup && dist <= filled;
    if (cmd == CMD_HELLO) {
        /* a HELLO resynchronises unless it repeats the last one (number and payload) */
        uint32_t crc = ~crc32_update(0xFFFFFFFFu, payload, len);
        if (!(stored && seq == last_hello_seq && len == last_hello_len
              && crc == last_hello_crc)) {
            synced = 1; expected = seq; filled = 0; stored = 0;
            last_hello_seq = seq; last_hello_len = len; last_hello_crc = crc;
        }
    }
    if (!synced) {
        reply_header(hdr, 1, nak(hdr, NAK_NOT_SYNCED, out), out_hdr);
        return 1;
    }
    uint8_t is_nak;
    if (seq != expected) {
        if (!stored) {
            reply_header(hdr, 1, nak(hdr, NAK_SEQUENCE, out), out_hdr);
            return 1;
        }
        duplicates++;
        const struct record *rec = &history[seq % LINK_WINDOW];
        if (rec->regen) {
            unsigned n;
            if (rec->cmd == CMD_HELLO) {
                n = hello_reply(out);
                is_nak = 0;
            } else if (rec->cmd == CMD_STATUS) {
                n = status_reply(out);
                is_nak = 0;
            } else {                    /* a READ, made from its request as it was kept */
                uint8_t h[HDR_SIZE] = {PROTO_VERSION, seq, CMD_READ, REQ_READ_SIZE, 0};
                n = memory_command(h, rec->bytes, REQ_READ_SIZE, out, &is_nak);
            }
            reply_header(hdr, is_nak, n, out_hdr);
        } else {
            for (unsigned k = 0; k < rec->len; k++) out[k] = rec->bytes[k];
            reply_header(hdr, rec->nak, rec->len, out_hdr);
        }
        return 1;
    }
    uint8_t request[REQ_READ_SIZE];     /* a READ's request, kept before the reply is made */
    for (unsigned k = 0; k < REQ_READ_SIZE && k < len; k++) request[k] = payload[k];
    unsigned n = execute(hdr, payload, len, out, &is_nak);
    reply_header(hdr, is_nak, n, out_hdr);
    struct record *rec = &history[seq % LINK_WINDOW];
    rec->nak = is_nak;
    rec->regen = !is_nak && (cmd == CMD_HELLO || cmd == CMD_STATUS || cmd == CMD_READ);
    rec->cmd = cmd;
    rec->len = rec->regen ? 0 : n;
    const uint8_t *keep = rec->regen ? request : out;
    unsigned nkeep = rec->regen ? (cmd == CMD_READ ? REQ_READ_SIZE : 0) : n;
    for (unsigned k = 0; k < nkeep && k < RECORD_BYTES; k++) rec->bytes[k] = keep[k];
    expected = seq + 1;
    if (filled < LINK_WINDOW) filled++;
    if (cmd == CMD_RESET && !is_nak) link_reset();
    return 1;
}
