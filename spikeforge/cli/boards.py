"""``spikeforge boards``: the boards a bitstream can be built for."""

from __future__ import annotations

NAME = "boards"
HELP = "list the boards: capacity (neurons, synapses), clock, memory split"


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args):
    import json

    from spikeforge.boards import BOARDS

    rows = []
    for b in BOARDS.values():
        cap = b.capacity()
        p = b.soc_preset()
        rows.append(dict(board=b.name, title=b.title, preset=b.preset, **cap,
                         lanes=p.core.lanes, max_delay=p.core.max_delay,
                         weight_bits=p.core.weight_bits, plastic=p.core.plastic,
                         baud=p.baud, pll=b.pll, memory=dict(b.memory)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'board':<12} {'device':<24} {'neurons':>7} {'synapses':>9} {'cores':>5} "
          f"{'clock':>9} {'link':>10} {'delay':>6}")
    for r in rows:
        print(f"{r['board']:<12} {r['title']:<24} {r['neurons']:>7} {r['synapses']:>9} "
              f"{r['cores']:>5} {r['clock_mhz']:>5g} MHz {r['link_clock_mhz']:>6g} MHz "
              f"{'0-' + str(r['max_delay']):>6}")
        for name, where in r["memory"].items():
            print(f"    {name}: {where}")
    return 0
