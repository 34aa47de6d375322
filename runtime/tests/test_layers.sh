#!/usr/bin/env bash
# test_layers.sh OBJ_DIR: scripts/check-runtime-layers.py passes on the runtime's objects (OBJ_DIR, one .o per
# runtime/*.c), and fails, naming the cycle, on files that call each other (so the check can fail). Ends with
# "layers: P passed, F failed".
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK=$(dirname "$(dirname "$HERE")")/scripts/check-runtime-layers.py
pass=0 fail=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/layers.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# The runtime itself: no cycle, and the table lists nnrt_main.c alone on the top level.
out=$(python3 "$CHECK" --list --objects "$1" 2>&1)
if [ $? -eq 0 ] && grep -q 'no cycle' <<<"$out"; then ok "runtime: no cycle"; else bad "runtime: $out"; fi
top=$(grep -E '^[0-9]+ ' <<<"$out" | sort -n | tail -1)
if [[ $top == *" nnrt_main.c "* ]]; then ok "runtime: nnrt_main.c on the top level"; else bad "runtime: top level is '$top'"; fi

# Two files calling each other, and a third calling one of them: exit 1, the cycle printed with its symbols.
mkdir -p "$TMP/cycle"
printf 'void nnrt_b(void);\nvoid nnrt_a(void) { nnrt_b(); }\n' >"$TMP/cycle/a.c"
printf 'void nnrt_a(void);\nvoid nnrt_b(void) { nnrt_a(); }\n' >"$TMP/cycle/b.c"
printf 'void nnrt_a(void);\nvoid nnrt_c(void) { nnrt_a(); }\n' >"$TMP/cycle/c.c"
out=$(python3 "$CHECK" "$TMP/cycle" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'a.c -> b.c (nnrt_b)' <<<"$out" && grep -q 'b.c -> a.c (nnrt_a)' <<<"$out" && ! grep -q 'c.c ->' <<<"$out"; then
    ok "a cycle fails, printed"
else
    bad "a cycle: exit $rc, $out"
fi

# The same files without the call back: a chain, levels 0 (b), 1 (a), 2 (c).
printf 'void nnrt_b(void) {}\n' >"$TMP/cycle/b.c"
out=$(python3 "$CHECK" --list "$TMP/cycle" 2>&1)
if [ $? -eq 0 ] && grep -qE '^0 +b\.c +-$' <<<"$out" && grep -qE '^1 +a\.c +b\.c$' <<<"$out" && grep -qE '^2 +c\.c +a\.c$' <<<"$out"; then
    ok "a chain passes, with its levels"
else
    bad "a chain: $out"
fi

# A file that calls into the entry point fails even without a cycle.
printf 'int nnrt_main(void) { return 0; }\n' >"$TMP/cycle/nnrt_main.c"
printf 'int nnrt_main(void);\nvoid nnrt_b(void) { nnrt_main(); }\n' >"$TMP/cycle/b.c"
out=$(python3 "$CHECK" "$TMP/cycle" 2>&1)
if [ $? -eq 1 ] && grep -q 'b.c calls into nnrt_main.c' <<<"$out"; then ok "a call into nnrt_main.c fails"; else bad "entry: $out"; fi

echo "layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
