/* The link's command processor as firmware: sequence numbers, the reply history and every
 * command of docs/protocol.md, as the hardware command processor (hdl/link.py) carries them
 * out, with the same refusals in the same order; tests/link/linkpeer.py's FakeBoard is the
 * executable spec of the session and the memory commands.
 *
 * The history keeps the reply of each of the last LINK_WINDOW commands; those of HELLO,
 * STATUS and READ (long, and free of side effects) are made again for a duplicate instead, as
 * the hardware command processor does: the record keeps the command (and a READ's request),
 * so a duplicate number gets the reply of the command that had it. */
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

void link_reset(void) {
    synced = 0; expected = 0; filled = 0; last_hello_len = 0xFFFF;
}

static unsigned nak(const uint8_t *hdr, uint8_t code, uint8_t *out) {
    hal_event(LINK_EVENT_NAK);
    out[NAKP_CMD] = hdr[HDR_CMD];
    out[NAKP_CODE] = code;
    out[NAKP_EXPECTED] = expected;
    return NAKP_SIZE;
}

/* an ACK's payload: the command's code, then ``size - 1`` bytes of fields written before */
static unsigned ack(uint8_t cmd, unsigned size, uint8_t *out, uint8_t *is_nak) {
    *is_nak = 0;
    out[0] = cmd;
    return size;
}

static const struct region *find_region(uint8_t id) {
    for (unsigned k = 0; k < LINK_N_REGIONS; k++)
        if (regions[k].id == id) return &regions[k];
    return 0;
}

unsigned link_word_bytes(unsigned region) {
    const struct region *r = find_region(region);
    return r ? r->word_bytes : 0;
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
        /* the words' count by steps (RV32I has no divider: compiler-rt's is 400 bytes) */
        unsigned at = REQ_WRITE_SIZE;
        for (count = 0; at + wb <= len; at += wb) count++;
        if (at != len) return nak(hdr, NAK_LENGTH, out);
    } else {
        count = cmd == CMD_READ ? get16(p + REQ_READ_COUNT) : get32(p + REQ_REGION_CRC_COUNT);
    }
    if (index > r->depth || count > r->depth - index
            || (cmd == CMD_READ && count * wb + REP_READ_SIZE > LINK_MAX_PAYLOAD))
        return nak(hdr, NAK_RANGE, out);
    if (cmd == CMD_WRITE) {
        for (uint32_t k = 0; k < count; k++)
            hal_mem_write(core, r->id, index + k, p + REQ_WRITE_SIZE + k * wb, wb);
        return ack(cmd, REP_WRITE_SIZE, out, is_nak);
    }
    if (cmd == CMD_READ) {
        for (uint32_t k = 0; k < count; k++)
            hal_mem_read(core, r->id, index + k, out + REP_READ_SIZE + k * wb, wb);
        return ack(cmd, REP_READ_SIZE + count * wb, out, is_nak);
    }
    put32(out + REP_REGION_CRC_CRC, ~hal_mem_crc32(0xFFFFFFFFu, core, r->id, index, count, wb));
    return ack(cmd, REP_REGION_CRC_SIZE, out, is_nak);
}

static unsigned hello_reply(uint8_t *out) {
    for (unsigned k = 0; k < REP_HELLO_SIZE; k++) out[k] = hello_template[k];
    out[REP_HELLO_OUT_SEQ] = hal_out_seq();
    put32(out + REP_HELLO_NONCE, hal_nonce());
    return REP_HELLO_SIZE;
}

static unsigned status_reply(uint8_t *out) {
    for (unsigned k = 0; k < REP_STATUS_SIZE; k++) out[k] = 0;
    out[0] = CMD_STATUS;
    hal_status(out);
    return REP_STATUS_SIZE;
}

/* the fixed fields' bytes of a command the firmware knows, else -1 */
static int fixed_size(uint8_t cmd) {
    switch (cmd) {
    case CMD_HELLO: return REQ_HELLO_SIZE;
    case CMD_WRITE: return REQ_WRITE_SIZE;
    case CMD_READ: return REQ_READ_SIZE;
    case CMD_REGION_CRC: return REQ_REGION_CRC_SIZE;
    case CMD_RUN: return REQ_RUN_SIZE;
    case CMD_STEP: return REQ_STEP_SIZE;
    case CMD_STOP: return REQ_STOP_SIZE;
    case CMD_INPUT: return REQ_INPUT_SIZE;
    case CMD_GENERATORS: return REQ_GENERATORS_SIZE;
    case CMD_PROBE: return REQ_PROBE_SIZE;
    case CMD_TIMER: return REQ_TIMER_SIZE;
    case CMD_STATUS: return REQ_STATUS_SIZE;
    case CMD_RESET: return REQ_RESET_SIZE;
    }
    return -1;
}

/* INPUT: the axons of one step for one core, into the stepper's queue (all or none) */
static unsigned input(const uint8_t *hdr, const uint8_t *p, unsigned len, uint8_t *out,
                      uint8_t *is_nak) {
    uint32_t step = get32(p + REQ_INPUT_STEP);
    unsigned core = p[REQ_INPUT_CORE], end = p[REQ_INPUT_FLAGS] & 1;
    unsigned bytes = len - REQ_INPUT_SIZE, code;
    if (core >= LINK_N_CORES) return nak(hdr, NAK_CORE, out);
    if (bytes & 1) return nak(hdr, NAK_LENGTH, out);
    if ((code = hal_input_check(step, bytes >> 1))) return nak(hdr, code, out);
    hal_input_push(1, step);
    int bad = 0;
    for (unsigned k = 0; k < bytes; k += 2) {
        unsigned axon = get16(p + REQ_INPUT_SIZE + k);
        bad |= axon >= LINK_N_AXONS;
        hal_input_push(0, (axon & ((1u << LINK_AXON_BITS) - 1)) | core << LINK_AXON_BITS);
    }
    hal_input_end(!bad, step, end);
    if (bad) return nak(hdr, NAK_ARGUMENT, out);
    return ack(CMD_INPUT, REP_INPUT_SIZE, out, is_nak);
}

/* GENERATORS: the gen_prob field of axons first .. first + count - 1 (read, modify, write) */
static unsigned generators(const uint8_t *hdr, const uint8_t *p, uint8_t *out,
                           uint8_t *is_nak) {
    unsigned core = p[REQ_GENERATORS_CORE];
    uint32_t first = get16(p + REQ_GENERATORS_FIRST), count = get16(p + REQ_GENERATORS_COUNT);
    uint32_t prob = p[REQ_GENERATORS_ENABLE] ? get16(p + REQ_GENERATORS_PROB) : 0;
    if (core >= LINK_N_CORES) return nak(hdr, NAK_CORE, out);
    if (first + count > LINK_N_AXONS) return nak(hdr, NAK_RANGE, out);
    uint8_t word[MAX_WORD_BYTES];
    for (uint32_t a = first; a < first + count; a++) {
        hal_mem_read(core, LINK_AXON_REGION, a, word, LINK_AXON_BYTES);
        for (unsigned b = 0; b < LINK_GEN_BITS; b++) {
            unsigned bit = LINK_GEN_LSB + b;
            uint8_t mask = 1u << (bit & 7);
            word[bit >> 3] = prob >> b & 1 ? word[bit >> 3] | mask : word[bit >> 3] & ~mask;
        }
        hal_mem_write(core, LINK_AXON_REGION, a, word, LINK_AXON_BYTES);
    }
    return ack(CMD_GENERATORS, REP_GENERATORS_SIZE, out, is_nak);
}

/* PROBE: a probe's settings (switched off by period 0, whatever the other fields) */
static unsigned probe(const uint8_t *hdr, const uint8_t *p, uint8_t *out, uint8_t *is_nak) {
    unsigned which = p[REQ_PROBE_PROBE], core = p[REQ_PROBE_CORE], id = p[REQ_PROBE_REGION];
    unsigned period = p[REQ_PROBE_PERIOD], count = get16(p + REQ_PROBE_COUNT);
    uint32_t index = get32(p + REQ_PROBE_INDEX);
    if (which >= LINK_N_PROBES) return nak(hdr, NAK_ARGUMENT, out);
    if (period) {
        if (core >= LINK_N_CORES) return nak(hdr, NAK_CORE, out);
        const struct region *r = find_region(id);
        if (!r) return nak(hdr, NAK_REGION, out);
        if (!count) return nak(hdr, NAK_ARGUMENT, out);
        /* the words must fit one PROBE_DATA frame */
        if (count * r->word_bytes > LINK_PROBE_PAYLOAD - OUT_PROBE_DATA_SIZE
                || index > r->depth || count > r->depth - index)
            return nak(hdr, NAK_RANGE, out);
    }
    hal_probe(which, core, id, period, index, count);
    return ack(CMD_PROBE, REP_PROBE_SIZE, out, is_nak);
}

/* The reply to a command that is carried out: refused for its code, its length, a run under
 * way, then its fields, in the order of the hardware (hdl/link.py). */
static unsigned execute(const uint8_t *hdr, const uint8_t *p, unsigned len, uint8_t *out,
                        uint8_t *is_nak) {
    uint8_t cmd = hdr[HDR_CMD];
    int size = fixed_size(cmd);
    uint32_t step, busy;
    *is_nak = 1;
    if (size < 0) return nak(hdr, NAK_COMMAND, out);
    if (cmd == CMD_WRITE || cmd == CMD_INPUT ? len < (unsigned)size : len != (unsigned)size)
        return nak(hdr, NAK_LENGTH, out);
    if ((cmd == CMD_WRITE || cmd == CMD_READ || cmd == CMD_REGION_CRC || cmd == CMD_STEP
         || cmd == CMD_RUN || cmd == CMD_GENERATORS) && !hal_idle())
        return nak(hdr, NAK_BUSY, out);
    switch (cmd) {
    case CMD_HELLO: *is_nak = 0; return hello_reply(out);
    case CMD_STATUS: *is_nak = 0; return status_reply(out);
    case CMD_INPUT: return input(hdr, p, len, out, is_nak);
    case CMD_GENERATORS: return generators(hdr, p, out, is_nak);
    case CMD_PROBE: return probe(hdr, p, out, is_nak);
    case CMD_WRITE: case CMD_READ: case CMD_REGION_CRC:
        return memory_command(hdr, p, len, out, is_nak);
    case CMD_TIMER:
        hal_timer(get32(p + REQ_TIMER_PERIOD));
        return ack(cmd, REP_TIMER_SIZE, out, is_nak);
    case CMD_RUN:
        step = hal_step();                      /* the run's first step */
        hal_run(get32(p + REQ_RUN_STEPS));
        put32(out + REP_RUN_STEP, step);
        return ack(cmd, REP_RUN_SIZE, out, is_nak);
    case CMD_STEP:
        step = hal_step_once(&busy);
        put32(out + REP_STEP_STEP, step);
        put32(out + REP_STEP_BUSY, busy);
        return ack(cmd, REP_STEP_SIZE, out, is_nak);
    case CMD_STOP:
        hal_stop();
        put32(out + REP_STOP_STEP, hal_step());  /* the next step to run */
        return ack(cmd, REP_STOP_SIZE, out, is_nak);
    }
    return ack(cmd, REP_RESET_SIZE, out, is_nak);    /* RESET: carried out once replied */
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
    if (cmd == CMD_OUT_ACK) {           /* the output side's; a malformed one is dropped */
        if (len == 1) hal_out_ack(payload[0]);
        return LINK_NONE;
    }
    if (hdr[HDR_VERSION] != PROTO_VERSION) {
        reply_header(hdr, 1, nak(hdr, NAK_VERSION, out), out_hdr);
        return LINK_REPLY;
    }
    uint8_t dist = (uint8_t)(expected - seq);
    int dup = synced && dist >= 1 && dist <= LINK_WINDOW;
    int stored = dup && dist <= filled;
    if (cmd == CMD_HELLO) {
        /* a HELLO resynchronises unless it repeats the last one (number and payload) */
        uint32_t crc = ~hal_crc32(0xFFFFFFFFu, payload, len);
        if (!(stored && seq == last_hello_seq && len == last_hello_len
              && crc == last_hello_crc)) {
            synced = 1; expected = seq; filled = 0; stored = 0;
            last_hello_seq = seq; last_hello_len = len; last_hello_crc = crc;
        }
    }
    if (!synced) {
        reply_header(hdr, 1, nak(hdr, NAK_NOT_SYNCED, out), out_hdr);
        return LINK_REPLY;
    }
    uint8_t is_nak;
    if (seq != expected) {
        if (!stored) {
            reply_header(hdr, 1, nak(hdr, NAK_SEQUENCE, out), out_hdr);
            return LINK_REPLY;
        }
        hal_event(LINK_EVENT_DUPLICATE);
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
        return LINK_REPLY;
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
    if (cmd == CMD_RESET && !is_nak) {
        link_reset();
        return LINK_REPLY_RESET;
    }
    return LINK_REPLY;
}
