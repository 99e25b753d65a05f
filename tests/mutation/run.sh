#!/usr/bin/env bash
# run.sh - seeded-mutation check: break one durability rule at a time and show
# that the test suite notices.  Each line of mutations.txt names a rule, the
# file, a perl substitution that must match exactly once, and the tests that
# must fail with it, separated by "@@".  The tree is copied to a scratch work tree (HEAD), so the
# checkout is never modified.  This is a tool, not a test: it rebuilds once
# per mutation (a few minutes in all).
#
#   bash tests/mutation/run.sh [ID ...]     # default: every mutation
#
# Output: one line per mutation, "KILLED id by test" or "SURVIVED id", and a
# closing "N killed, N survived, N stale" line; exit 1 unless all are killed.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
list=$src/tests/mutation/mutations.txt
scratch=$(mktemp -d /tmp/vdisk-mutation.XXXXXX)
trap 'git -C "$src" worktree remove --force "$scratch/tree" >/dev/null 2>&1; rm -rf "$scratch"' EXIT
git -C "$src" worktree add --detach -q "$scratch/tree" HEAD
tree=$scratch/tree
meson setup "$tree/build" "$tree" -Dbuildtype=debug -Dwerror=false >/dev/null || exit 1
ninja -C "$tree/build" >/dev/null || { echo "baseline build failed"; exit 1; }

# One mutation = the consecutive lines that share an id.
# Fields are separated by "@@" (a substitution may hold '|'); \x1f is what the loop splits on.
mapfile -t lines < <(grep -v '^\s*#' "$list" | grep -v '^\s*$' | awk -F' *@@ *' -v OFS=$'\x1f' '{ $1 = $1; print $1, $2, $3, $4 }')
ids=()
for l in "${lines[@]}"; do
  id=${l%%$'\x1f'*}
  [ "${#ids[@]}" -gt 0 ] && [ "${ids[-1]}" = "$id" ] || ids+=("$id")
done

killed=0 survived=0 stale=0
for id in "${ids[@]}"; do
  [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$id" && continue
  ok=1 tests="" files=()
  for l in "${lines[@]}"; do
    IFS=$'\x1f' read -r lid file subst t <<< "$l"
    [ "$lid" = "$id" ] || continue
    [ -n "$t" ] && tests=$t
    [ -f "$scratch/orig.${file//\//_}" ] || cp "$tree/$file" "$scratch/orig.${file//\//_}"
    files+=("$file")
    n=$(MUT="$subst" perl -0ne 'BEGIN{$n=0} my $c = eval "\$_ =~ $ENV{MUT}g"; $n += $c || 0; END{print $n}' "$tree/$file")
    if [ "$n" != 1 ]; then
      echo "STALE    $id ($file: the substitution matched $n times)"; ok=0; break
    fi
    MUT="$subst" perl -0pi -e 'eval "\$_ =~ $ENV{MUT}"' "$tree/$file"
  done
  if [ $ok = 0 ]; then
    stale=$((stale + 1))
  elif ! ninja -C "$tree/build" >/dev/null 2>&1; then
    echo "STALE    $id (does not build)"; stale=$((stale + 1))
  else
    who=""
    for t in $tests; do
      if ! meson test -C "$tree/build" --no-rebuild "$t" >/dev/null 2>&1; then who="$who $t"; fi
    done
    if [ -n "$who" ]; then echo "KILLED   $id by$who (of: $tests)"; killed=$((killed + 1))
    else echo "SURVIVED $id (ran: $tests)"; survived=$((survived + 1)); fi
  fi
  for f in "${files[@]}"; do
    [ -f "$scratch/orig.${f//\//_}" ] && mv "$scratch/orig.${f//\//_}" "$tree/$f"
  done
done
echo "$killed killed, $survived survived, $stale stale"
[ "$survived" = 0 ] && [ "$stale" = 0 ]
