#!/usr/bin/env python3
"""Instruction counts of the AArch64 int8 kernels' inner loops, from the disassembly.

qemu timings mean nothing, so docs/design.md quotes these counts instead. For every function of
an object file whose demangled name matches PATTERN, each innermost loop (a backward branch with
no other backward branch inside it) that contains sdot, smmla or sadalp (the plain NEON tiles)
is printed with its instruction count and the mix: one iteration of such a loop is one
32-element block of a tile.

usage: scripts/neon-inner-loops.py OBJECT [PATTERN]
  e.g. scripts/neon-inner-loops.py build-aarch64/kernels/CMakeFiles/nibble_kernels.dir/matmul_neon_i8mm.cpp.o Q4_0
"""
import re
import subprocess
import sys


def functions(obj):
    out = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "-C", "--no-show-raw-insn", obj],
                         check=True, capture_output=True, text=True).stdout
    name, insns = None, []
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            if name:
                yield name, insns
            name, insns = m.group(1), []
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m and name:
            insns.append((int(m.group(1), 16), m.group(2), m.group(3)))
    if name:
        yield name, insns


def loops(insns):
    found = []
    for i, (addr, op, args) in enumerate(insns):
        if op.startswith("b") and op not in ("bl", "blr", "br", "bic", "bif", "bit", "bsl"):
            m = re.search(r"(?:^|\s)([0-9a-f]+) <", args)
            if m and int(m.group(1), 16) <= addr:
                start = int(m.group(1), 16)
                found.append((start, addr, [x for x in insns if start <= x[0] <= addr]))
    inner = [l for l in found if not any(o is not l and l[0] <= o[0] and o[1] <= l[1] for o in found)]
    return inner


def main():
    obj = sys.argv[1]
    pattern = sys.argv[2] if len(sys.argv) > 2 else ""
    for name, insns in functions(obj):
        short = re.sub(r"nibble::detail::\(anonymous namespace\)::", "", name)
        short = re.sub(r"\(nibble::detail::MatmulArgs const&, long, long\)", "", short)
        if pattern not in short or "nibble" not in name:
            continue
        for start, end, body in loops(insns):
            ops = [op for _, op, _ in body]
            n_sdot, n_smmla, n_sadalp = ops.count("sdot"), ops.count("smmla"), ops.count("sadalp")
            if n_sdot + n_smmla + n_sadalp == 0:
                continue
            # A loop with branches or calls inside is not one straight block iteration (the
            # generic tiles' unpackers): its count is not a per-block cost, so it is flagged.
            inner_branches = sum(1 for op in ops[:-1] if op.startswith(("b.", "cb", "tb")) or op in ("b", "bl", "blr"))
            loads = sum(1 for op in ops if op.startswith("ld"))
            fp = sum(1 for op in ops if op in ("fmla", "fmul", "fadd", "scvtf", "fcvtl", "fsub"))
            print(f"{short}  loop {start:#x}-{end:#x}: {len(body)} insns "
                  f"(sdot {n_sdot}, smmla {n_smmla}, sadalp {n_sadalp}, loads {loads}, float {fp}, "
                  f"other {len(body) - n_sdot - n_smmla - n_sadalp - loads - fp})"
                  + ("" if inner_branches == 0 else f"  [not straight-line: {inner_branches} branches/calls inside]"))


if __name__ == "__main__":
    main()
