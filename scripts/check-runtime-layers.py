#!/usr/bin/env python3
"""check-runtime-layers.py — which runtime/ file calls into which, and a check that no call cycle runs through them.

    scripts/check-runtime-layers.py [--list] [--objects DIR] [SRC_DIR]

The call graph comes from the object files: a file calls into another when it uses (nm: "U") a global symbol the
other defines (a function or a table). Without --objects, every .c directly in SRC_DIR (default: runtime/) is
compiled into a temp folder first ($CC, else clang, else cc). Exit status 1, with one cycle printed edge by edge
(and the symbols behind each edge), when the file-level graph has a cycle: the runtime's layers must depend one
way only, lower files never calling back up (runtime/README.md). --list prints the layer table: a file's level is
0 when it calls no other file, else one more than the highest level it calls into. Nothing may call into
nnrt_main.c, the entry point.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ENTRY = "nnrt_main.c"  # the entry point: it calls into the runtime, nothing in the runtime calls into it


def die(msg):
    print(f"check-runtime-layers: {msg}", file=sys.stderr)
    sys.exit(2)


def compile_sources(src_dir, out_dir):
    cc = os.environ.get("CC") or shutil.which("clang") or shutil.which("cc") or "/opt/swift/usr/bin/clang"
    sources = sorted(f for f in os.listdir(src_dir) if f.endswith(".c"))
    if not sources:
        die(f"{src_dir}: no .c files")
    for f in sources:
        obj = os.path.join(out_dir, f[:-2] + ".o")
        r = subprocess.run([cc, "-std=c11", "-O0", "-w", "-I", src_dir, "-c", os.path.join(src_dir, f), "-o", obj],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die(f"cannot compile {f}:\n{r.stderr}")
    return out_dir


def symbols(obj_dir):
    """{file.c: (defined, used)}: the global symbols each object defines and the undefined ones it uses."""
    out = {}
    objs = sorted(f for f in os.listdir(obj_dir) if f.endswith(".o"))
    if not objs:
        die(f"{obj_dir}: no .o files")
    for f in objs:
        r = subprocess.run(["nm", os.path.join(obj_dir, f)], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"nm {f}: {r.stderr.strip()}")
        defined, used = set(), set()
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TDBRCGSV":  # upper case: global
                defined.add(parts[2])
            elif len(parts) == 2 and parts[0] == "U":
                used.add(parts[1])
        out[f[:-2] + ".c"] = (defined, used)
    return out


def call_graph(syms):
    """{file: {callee file: [symbols]}}."""
    owner = {}
    for f, (defined, _) in syms.items():
        for s in defined:
            owner[s] = f
    graph = {}
    for f, (_, used) in syms.items():
        edges = {}
        for s in sorted(used):
            g = owner.get(s)
            if g and g != f:
                edges.setdefault(g, []).append(s)
        graph[f] = edges
    return graph


def find_cycle(graph):
    """One cycle as a list of files [a, b, …, a], or None (depth-first, files in name order)."""
    done = set()
    for root in sorted(graph):
        if root in done:
            continue
        stack = [(root, iter(sorted(graph[root])))]  # the path from root, each file with its callees left
        on_path = {root}
        while stack:
            node, callees = stack[-1]
            nxt = next(callees, None)
            if nxt is None:
                done.add(node)
                on_path.discard(node)
                stack.pop()
            elif nxt in on_path:
                path = [f for f, _ in stack]
                return path[path.index(nxt):] + [nxt]
            elif nxt not in done:
                on_path.add(nxt)
                stack.append((nxt, iter(sorted(graph[nxt]))))
    return None


def levels(graph):
    level = {}

    def visit(f):
        if f not in level:
            level[f] = 1 + max((visit(g) for g in graph[f]), default=-1)
        return level[f]

    for f in graph:
        visit(f)
    return level


def main():
    ap = argparse.ArgumentParser(description="runtime/'s file-level call graph: fails on a cycle")
    ap.add_argument("src_dir", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime"))
    ap.add_argument("--objects", help="a folder of already compiled objects (one per .c) instead of compiling")
    ap.add_argument("--list", action="store_true", help="print the layer table: each file's level and what it calls")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        obj_dir = args.objects or compile_sources(os.path.normpath(args.src_dir), tmp)
        graph = call_graph(symbols(obj_dir))
    callers = sorted(f for f in graph if ENTRY in graph[f])
    if callers:
        print(f"error: {', '.join(callers)} call{'s' if len(callers) == 1 else ''} into {ENTRY}, the entry point "
              f"({', '.join(sorted({s for f in callers for s in graph[f][ENTRY]}))}): move what they use into a lower file")
        return 1
    cycle = find_cycle(graph)
    if cycle:
        print("error: the runtime's files call each other in a cycle (lower layers must not call back up):")
        for a, b in zip(cycle, cycle[1:]):
            syms = graph[a][b]
            print(f"  {a} -> {b} ({', '.join(syms[:3])}{', …' if len(syms) > 3 else ''})")
        return 1
    if args.list:
        level = levels(graph)
        width = max(len(f) for f in graph)
        print(f"{'level':<6}{'file':<{width + 2}}calls into")
        for f in sorted(graph, key=lambda f: (level[f], f)):
            print(f"{level[f]:<6}{f:<{width + 2}}{' '.join(sorted(graph[f], key=lambda g: (level[g], g))) or '-'}")
    print(f"runtime layers: {len(graph)} files, {sum(len(e) for e in graph.values())} calls between files, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
