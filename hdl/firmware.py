"""Firmware for the ``ControlCPU``: C compiled to RV32I by Zig's clang (``ziglang``, PyPI).

``build_firmware(sources, ram_words)`` compiles and links ``sources`` (file name -> C text)
for SERV: freestanding, no C library (Zig's compiler-rt for multiply and divide), ``-Os``;
the start code (``_start``) sets the stack pointer to the top of the RAM and calls ``main``;
text, read-only data, data and bss follow each other from address 0, so the image's words are
the RAM's initial contents (``.data`` is in them, ``.bss`` is the RAM's zeros; a firmware that
needs them as they were must not be restarted without reloading the RAM). A firmware that does
not leave ``stack_bytes`` of the RAM free is refused (the linker's memory region), naming the
RAM's size and the overflow. Images are cached under ``build_root()`` by the digest of their
sources and flags: a second build of the same firmware runs no compiler. ``build_native``
compiles the same C for this machine, for tests through ``ctypes``.
"""

import fcntl
import hashlib
import re
import subprocess
import sys
from pathlib import Path

from ..toolchain import build_root

__all__ = ["build_firmware", "build_native", "firmware_end", "firmware_ram_words",
           "link_config_header", "link_sources", "protocol_header", "FIRMWARE_FLAGS", "SOURCES"]

# the firmware's own C sources (``hdl/firmware/``), read by name
SOURCES = Path(__file__).resolve().parent / "firmware"

# no C library and no start files for a freestanding target; Zig links its compiler-rt (RV32I
# has no multiply or divide: ``__mulsi3``, ``__udivsi3``)
FIRMWARE_FLAGS = ("-target", "riscv32-freestanding-none", "-mcpu=generic_rv32", "-Os",
                  "-ffreestanding", "-fno-builtin", "-fno-unwind-tables",
                  "-fno-asynchronous-unwind-tables", "-Wall", "-Werror")

# word 1 of the image: where its data ends (``firmware_end``)
_START = """\
    .section .text.start
    .globl _start
_start:
    j 2f
    .balign 4                   /* c.j is 2 bytes in RV32IC */
    .word _end
2:  la t0, _bss_start          /* .bss cleared: a RAM without initial contents (SPRAM), */
    la t1, _end                 /* and the state of before a reset */
3:  bgeu t0, t1, 4f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 3b
4:  li sp, {stack_top}
    call main
1:  j 1b
"""

_LINK = """\
MEMORY {{ ram (rwx) : ORIGIN = 0, LENGTH = {length} }}
SECTIONS {{
  .text : {{ *(.text.start) *(.text*) }} > ram
  .rodata : {{ *(.rodata*) *(.srodata*) }} > ram
  .data : {{ *(.data*) *(.sdata*) }} > ram
  . = ALIGN(4);
  _bss_start = .;
  .bss : {{ *(.bss*) *(.sbss*) *(COMMON) }} > ram
  . = ALIGN(4);
  _end = .;
  /DISCARD/ : {{ *(.eh_frame*) *(.comment) *(.riscv.attributes) }}
}}
"""


def _zig(*args, cwd):
    try:
        import ziglang  # noqa: F401 - only whether it is there
    except ImportError as e:
        raise RuntimeError("the firmware compiler is not installed: pip install "
                           "'ziglang>=0.17,<0.18'") from e
    result = subprocess.run([sys.executable, "-m", "ziglang", *args], cwd=cwd,
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"firmware build failed (zig {args[0]}): "
                           f"{result.stderr.strip()[-2000:]}")


def _cached(kind, key, sources, make):
    """``(folder, digest)``: ``build_root()/kind/<digest of key>`` holding ``sources``, in
    which ``make(folder)`` has run once. Under a file lock, as ``toolchain.build_binary``'s
    builds are: parallel test workers that want the same build share one."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    folder = build_root() / kind / digest
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "built.ok").exists():
            for name, text in sources.items():
                (folder / name).write_text(text)
            make(folder)
            (folder / "built.ok").write_text("ok\n")
    return folder, digest


def build_firmware(sources, ram_words, *, stack_bytes=512, compressed=False):
    """The RAM image (32-bit words, little-endian) of the C ``sources`` for a ``ControlCPU`` of
    ``ram_words`` words (``compressed``: RV32IC, for a ``ControlCPU(compressed=True)``). The
    image's word 1 is the address where its data ends (``.bss`` included: ``firmware_end``)."""
    flags = FIRMWARE_FLAGS + (("-mcpu=generic_rv32+c",) if compressed else ())
    ram_bytes = 4 * ram_words
    if stack_bytes >= ram_bytes:
        raise ValueError(f"stack of {stack_bytes} bytes does not fit the RAM of {ram_bytes} bytes")
    start = _START.format(stack_top=ram_bytes)
    link = _LINK.format(length=ram_bytes - stack_bytes)     # the stack above the image

    def make(folder):
        (folder / "start.S").write_text(start)
        (folder / "link.ld").write_text(link)
        try:
            _zig("cc", *flags, "-T", "link.ld", "-o", "image.elf", "start.S",
                 *sorted(f for f in sources if f.endswith((".c", ".S"))), cwd=folder)
        except RuntimeError as e:
            if "will not fit in region" in str(e):
                over = re.search(r"overflowed by (\d+) bytes", str(e))
                raise ValueError(
                    f"firmware does not fit the RAM of {ram_bytes} bytes with {stack_bytes} "
                    f"bytes of stack" + (f" (over by {over[1]} bytes)" if over else "")) from None
            raise
        _zig("objcopy", "-O", "binary", "image.elf", "image.bin", cwd=folder)

    folder, _ = _cached("firmware", (sorted(sources.items()), flags, start, link), sources,
                        make)
    data = (folder / "image.bin").read_bytes()
    data += bytes(-len(data) % 4)
    return [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]


def firmware_ram_words(sources, *, step=1, stack_bytes=512, compressed=False):
    """The fewest words, a multiple of ``step``, of a RAM that holds the firmware of
    ``sources``, its data and ``stack_bytes`` of stack (from a build in a large RAM: the image
    says where its data ends)."""
    image = build_firmware(sources, 1 << 16, stack_bytes=stack_bytes, compressed=compressed)
    words = -(-(firmware_end(image) + stack_bytes) // 4)
    return -(-words // step) * step


def firmware_end(image):
    """The address where the data of firmware ``image`` (``build_firmware``'s) ends."""
    return image[1]


def _crc_residue():
    from spikeforge import protocol

    body = b"spikeforge"
    return protocol.crc32(body + protocol.crc32(body).to_bytes(protocol.CRC_BYTES, "little")) \
        ^ protocol.CRC_ALGORITHM["xor_output"]


def protocol_header():
    """``protocol.h`` for firmware: the codes, sizes and field offsets of
    ``spikeforge.protocol`` as ``#define`` lines, so that C and Python share one declaration."""
    from spikeforge import protocol

    lines = ["/* generated from spikeforge.protocol by spikeforge.hdl.firmware */",
             "#pragma once",
             f"#define PROTO_VERSION {protocol.VERSION}",
             f"#define PROTO_SEQ_MODULO {protocol.SEQ_MODULO}",
             f"#define PROTO_CRC_BYTES {protocol.CRC_BYTES}",
             # the CRC register (before its final XOR) after a frame's bytes and its CRC: the
             # same for every frame (firmware/frames.c checks a frame with it)
             f"#define PROTO_CRC_RESIDUE 0x{_crc_residue():08X}u"]
    lines += [f"#define CMD_{c.name} 0x{int(c):02X}" for c in protocol.Command]
    lines += [f"#define NAK_{c.name} {int(c)}" for c in protocol.NakCode]
    lines += [f"#define FLAG_{f.name} {int(f)}" for f in protocol.HelloFlags]
    lines += [f"#define RUN_{r.name} {int(r)}" for r in protocol.RunState]
    lines += [f"#define STEP_{f.name} {int(f)}" for f in protocol.StepFlags]
    layouts = [("HDR", protocol.HEADER), ("NAKP", protocol.NAK_PAYLOAD)]
    layouts += [(f"REQ_{c.name}", lay) for c, lay in protocol.REQUEST.items()]
    layouts += [(f"REP_{c.name}", lay) for c, lay in protocol.REPLY.items()]
    layouts += [(f"OUT_{c.name}", lay) for c, lay in protocol.OUTPUT.items()]
    for prefix, layout in layouts:
        lines.append(f"#define {prefix}_SIZE {layout.size}")
        for name, (off, _, _) in layout.offsets().items():
            lines.append(f"#define {prefix}_{name.upper()} {off}")
    return "\n".join(lines) + "\n"


def build_native(sources, name):
    """``sources`` (file name -> C text) compiled for this machine as a shared library (Zig's
    clang, ``-O1``): the firmware's logic tested on the host through ``ctypes``. Returns its
    path, cached like ``build_firmware``'s images."""
    flags = ("-shared", "-fPIC", "-O1", "-Wall", "-Werror")

    def make(folder):
        # the digest (the folder's name) in the file name: the loader knows a library by its
        # name (its soname), and a second build loaded into the same process must not be
        # taken for the first
        tmp = folder / "build"
        tmp.mkdir(exist_ok=True)
        lib = f"lib{name}-{folder.name}.so"
        _zig("cc", *flags, "-I", "..", "-o", lib,
             *(f"../{f}" for f in sorted(sources) if f.endswith(".c")), cwd=tmp)
        (tmp / lib).rename(folder / lib)

    folder, digest = _cached("firmware-native", (sorted(sources.items()), flags, name),
                             sources, make)
    return folder / f"lib{name}-{digest}.so"


def link_config_header(chipmap, *, window, max_payload, hello, n_probes=1, probe_payload=256,
                       regions=None):
    """``config.h`` of the link firmware (``firmware/link.c``) for the chip of ``chipmap`` (a
    ``spikeforge.routing.ChipMap`` of equal cores): ``regions`` maps a link region id to
    ``(word_bytes, depth)`` (default: every one of ``protocol.link_regions``); ``hello`` is the
    HELLO reply's bytes (``nonce`` and ``out_seq`` are filled in when it is sent)."""
    from spikeforge import protocol
    from spikeforge.image import GEN_PROB_BITS
    from spikeforge.memmap import Region

    if regions is None:
        regions = {int(r): (protocol.word_bytes(chipmap, r), lay.depth)
                   for r, lay in protocol.link_regions(chipmap).items()}
    memmap = chipmap.memmaps[0]
    rows = ", ".join(f"{{{int(r)}, {wb}, {depth}}}" for r, (wb, depth) in sorted(regions.items()))
    return "\n".join([
        "/* generated by spikeforge.hdl.firmware.link_config_header */",
        "#pragma once",
        f"#define LINK_N_CORES {chipmap.n_cores}",
        f"#define LINK_N_AXONS {memmap.config.n_axons}",
        f"#define LINK_AXON_BITS {chipmap.routes.axon_bits}",
        f"#define LINK_WINDOW {window}",
        f"#define LINK_MAX_PAYLOAD {max_payload}",
        f"#define LINK_N_PROBES {n_probes}",
        f"#define LINK_PROBE_PAYLOAD {probe_payload}",
        f"#define LINK_N_REGIONS {len(regions)}",
        f"#define LINK_MAX_WORD_BYTES {max(wb for wb, _ in regions.values())}",
        f"#define LINK_REGION_TABLE {{{rows}}}",
        f"#define LINK_HELLO_TEMPLATE {{{', '.join(str(b) for b in hello)}}}",
        # GENERATORS: the axon words' gen_prob field
        f"#define LINK_AXON_REGION {int(Region.AXON)}",
        f"#define LINK_AXON_BYTES {protocol.word_bytes(chipmap, Region.AXON)}",
        f"#define LINK_GEN_LSB {memmap[Region.AXON].offsets()['gen_prob'][0]}",
        f"#define LINK_GEN_BITS {GEN_PROB_BITS}",
    ]) + "\n"


def link_sources(config_h):
    """The link firmware's C sources with its generated headers (``protocol.h``, and
    ``config.h`` from ``link_config_header``)."""
    return {"protocol.h": protocol_header(), "config.h": config_h,
            **{path.name: path.read_text() for path in sorted(SOURCES.glob("link*"))}}
