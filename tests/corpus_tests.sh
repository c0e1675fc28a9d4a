#!/usr/bin/env bash
# corpus_tests.sh: the bad-input corpus (tests/corpus/cases.tsv, one file per case) run through
# the sdnn program under mpirun with 2 and 3 ranks (2 only with SDNN_QUICK=1: the sanitizer and
# MPICH steps, where 3 ranks on CI's 2 cores cost half as much again). A bad case must end
# within 60 s with: exactly one 'sdnn: error' line, which names the file (and the line, where there
# is one) followed by the expected fragment; a non-zero exit on every rank (each rank's own status,
# recorded by a wrapper, and mpirun's); no file left in the output folder. A success case must exit
# 0 on every rank and write the good problem's categories. Writes "passed failed skipped" to $1.
# SDNN_CORPUS_CASES=REGEX runs only the cases whose name matches.
set -u
cd "$(dirname "$0")/.."
out_file=$1
MPIRUN=${MPIRUN:-mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}
corpus=tests/corpus
good=$corpus/good
rank_counts="2 3"
[ "${SDNN_QUICK:-0}" = 1 ] && rank_counts="2"
# mpirun waits 1 s between SIGTERM and SIGKILL when it ends a job after a non-zero exit; every
# rank has exited (or recorded its status) by then, so no wait is needed: 80 runs take 1 s less each.
export OMPI_MCA_odls_base_sigkill_timeout=0
tmp=$(mktemp -d)
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); echo "[ corpus   OK ] $1"; }
bad() { failed=$((failed + 1)); echo "[ corpus FAIL ] $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | tail -20; }
skip() { skipped=$((skipped + 1)); echo "[ corpus SKIP ] $1"; }

# make_special TOKEN PATH KIND: creates the run-time file TOKEN (see cases.tsv) at PATH, a copy of
# the good file of KIND (input, truth or layer) where one is needed. Returns 2 for a case to skip.
make_special() {
  local token=$1 path=$2 kind=$3 source
  case $kind in input) source=$good/input.tsv ;; truth) source=$good/truth.tsv ;; *) source=$good/n32-l2.tsv ;; esac
  case $token in
    @long-line)  # line 30 holds 10 MB of digits after the two indices
      { head -n 29 "$source"; printf '6\t9\t'; head -c 10485760 /dev/zero | tr '\0' '1'; printf '\n'; tail -n +31 "$source"; } > "$path" ;;
    @missing) ;;
    @dir) mkdir -p "$path" ;;
    @fifo) mkfifo "$path" ;;
    @socket) perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 1) or die "$!\n"' "$path" ;;
    @unreadable)
      # Root reads a chmod 000 file; CI runs as root, so there the case runs without the two
      # capabilities that let root ignore file permissions (unprivileged as far as files go).
      if [ "$(id -u)" = 0 ]; then
        local drop=(setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=-dac_override,-dac_read_search)
        cp "$source" "$path" && chmod 000 "$path" || return 1
        "${drop[@]}" true > /dev/null 2>&1 || return 2  # no setpriv, or not allowed to drop them
        "${drop[@]}" cat "$path" > /dev/null 2>&1 && return 2  # still readable
        unprivileged=("${drop[@]}")
      else
        cp "$source" "$path" && chmod 000 "$path"
      fi ;;
    @gz-cut)  # gzipped, then cut in the middle
      gzip -c "$source" > "$path.full" && head -c $(( $(stat -c %s "$path.full") / 2 )) "$path.full" > "$path" && rm "$path.full" ;;
    *) echo "unknown run-time file $token" >&2; return 1 ;;
  esac
}

# The archives of the good problem (sdnn convert), and of an 8200-row input whose last block
# (rows 8193-8200) only the last rank of 2 or 3 reads.
archives=$tmp/archives
mkdir -p "$archives"
awk 'BEGIN { for (r = 1; r <= 8200; r++) printf "%d\t%d\t1\n", r, (r * 7) % 32 + 1 }' > "$tmp/input-8200.tsv"
if ! ./sdnn convert --neurons 32 --network "$good" --layers 3 --input "$good/input.tsv" --inputs 6 --out "$archives" > "$tmp/convert.log" 2>&1 ||
   ! ./sdnn convert --neurons 32 --input "$tmp/input-8200.tsv" --inputs 8200 --out "$archives" >> "$tmp/convert.log" 2>&1; then
  bad "sdnn convert of the good problem" "$tmp/convert.log"
fi

# flip_byte FILE OFFSET (negative: from the end): inverts every bit of one byte.
flip_byte() {
  local at=$2 byte
  [ "$at" -lt 0 ] && at=$(( $(stat -c %s "$1") + at ))
  byte=$(od -An -tu1 -j "$at" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((byte ^ 255)))" | dd of="$1" bs=1 seek="$at" conv=notrunc status=none
}

# make_archive TOKEN KIND PATH-FOLDER: a copy of an archive of the good problem (KIND input: the
# inputs, else the network) broken as TOKEN says (see cases.tsv); prints its path.
make_archive() {
  local token=$1 kind=$2 folder=$3 source
  if [ "$kind" = input ]; then source=$archives/sparse-images-32-6.sdnn; else source=$archives/neuron32-l3.sdnn; fi
  case $token in
    @archive-late) source=$archives/sparse-images-32-8200.sdnn ;;
    @archive-other-kind) if [ "$kind" = input ]; then source=$archives/neuron32-l3.sdnn; else source=$archives/sparse-images-32-6.sdnn; fi ;;
  esac
  local path=$folder/$(basename "$source")
  cp "$source" "$path"
  case $token in
    @archive|@archive-other-kind) ;;
    @archive-empty) : > "$path" ;;
    @archive-truncated) truncate -s -10 "$path" ;;
    @archive-truncated-header) truncate -s 20 "$path" ;;
    @archive-trailing) printf 'abc' >> "$path" ;;
    @archive-bad-magic) flip_byte "$path" 0 ;;
    @archive-version) printf '\002' | dd of="$path" bs=1 seek=16 conv=notrunc status=none ;;  # u32 version at 16
    @archive-flipped-header) flip_byte "$path" 20 ;;  # N, in the fixed header
    @archive-flipped-table) flip_byte "$path" 33 ;;   # the second byte of the first nonzero count
    @archive-flipped|@archive-late) flip_byte "$path" -9 ;;  # the last data byte, before the last checksum
    *) echo "unknown archive $token" >&2; return 1 ;;
  esac
  echo "$path"
}

# The line number a fragment names ("file:LINE: ..."), or nothing.
line_of_fragment() { sed -nE 's/^[^:]*:([0-9]+):.*/\1/p' <<< "$1"; }

# run_case NAME BAD FILE ARGS EXPECTED NP
run_case() {
  local name=$1 kind=$2 file=$3 args=$4 expected=$5 np=$6
  local dir=$tmp/$name-$np
  mkdir -p "$dir/out" "$dir/ranks"
  local net=$good input=$good/input.tsv out=$dir/out/categories.tsv extra=() shown="" keep=""
  unprivileged=()  # make_special sets the command prefix of a case that runs unprivileged
  if [[ $kind != network-dir && $kind != out && $kind != report && $file != @* ]]; then shown=$corpus/$file; fi
  case $kind in
    input|truth)
      if [[ $file == @archive* ]]; then
        shown=$(make_archive "$file" "$kind" "$dir") || { bad "$name: cannot make $file"; return; }
      elif [[ $file == @* ]]; then
        shown=$dir/${file#@}.tsv
        make_special "$file" "$shown" "$kind"
        case $? in 0) ;; 2) skip "$name, $np ranks: running as root, where chmod 000 does not stop reading, and setpriv cannot drop the capabilities (input-socket is a file that cannot be opened)"; return ;; *) bad "$name: cannot make $file"; return ;; esac
      fi
      if [ "$kind" = input ]; then input=$shown; else extra+=(--truth "$shown"); fi ;;
    layer)
      net=$dir/net
      mkdir -p "$net" && cp "$good"/n32-l1.tsv "$good"/n32-l3.tsv "$net"/
      shown=$net/n32-l2.tsv
      if [[ $file == @* ]]; then
        make_special "$file" "$shown" layer
        case $? in 0) ;; 2) skip "$name, $np ranks: running as root, where chmod 000 does not stop reading, and setpriv cannot drop the capabilities"; return ;; *) bad "$name: cannot make $file"; return ;; esac
      else
        cp "$corpus/$file" "$shown"
      fi ;;
    input-gz)  # the corpus file gzipped
      shown=$dir/$file.gz
      gzip -c "$corpus/$file" > "$shown"
      input=$shown ;;
    layer-gz|layer-tar)  # layer 2 gzipped in the folder, or the folder packed as a tar.gz
      net=$dir/net
      mkdir -p "$net" && cp "$good"/n32-l1.tsv "$good"/n32-l3.tsv "$net"/
      if [ "$kind" = layer-gz ]; then
        shown=$net/n32-l2.tsv.gz
        gzip -c "$corpus/$file" > "$shown"
      else
        cp "$corpus/$file" "$net/n32-l2.tsv"
        shown=$dir/neuron32.tar.gz
        tar czf "$shown" -C "$dir" net
        net=$shown
      fi ;;
    network-dir)
      net=$dir/net
      case $file in
        @tar) net=$dir/neuron32.tar.gz; shown=$net; tar czf "$net" -C "$corpus" good ;;
        @tar-cut) net=$dir/neuron32.tar.gz; shown=$net; tar czf "$dir/full.tar.gz" -C "$corpus" good &&
                  head -c $(( $(stat -c %s "$dir/full.tar.gz") / 2 )) "$dir/full.tar.gz" > "$net" ;;
        @good) net=$good ;;
        @archive*) net=$(make_archive "$file" network "$dir") || { bad "$name: cannot make $file"; return; }
                   shown=$net ;;
        @missing) net=$dir/missing ;;
        @loop) net=$dir/loop; ln -s loop "$net" ;;
        @layer-loop) mkdir -p "$net" && cp "$good"/n32-l1.tsv "$good"/n32-l3.tsv "$net"/ && ln -s n32-l2.tsv "$net/n32-l2.tsv" ;;
        @file) net=$dir/file.tsv; cp "$good/input.tsv" "$net" ;;
        @missing-middle) mkdir -p "$net" && cp "$good"/n32-l1.tsv "$good"/n32-l3.tsv "$net"/ ;;
        @extra-layers) mkdir -p "$net" && cp "$good"/n32-l?.tsv "$net"/ && cp "$good/n32-l1.tsv" "$net/n32-l4.tsv" &&
                       cp "$good/n32-l2.tsv" "$net/n32-l5.tsv" ;;
        @renamed-n16) mkdir -p "$net" && for l in 1 2 3; do cp "$good/n32-l$l.tsv" "$net/n16-l$l.tsv"; done ;;
        *) bad "$name: unknown network folder $file"; return ;;
      esac ;;
    out|report)
      local target
      case $file in
        @missing-folder) target=$dir/out/no/such/folder/categories.tsv ;;
        @dir) target=$dir/out/dir.tsv; mkdir -p "$target" ;;
        @dev-null) target=/dev/null ;;
        @dev-full) target=/dev/full ;;
        @fifo) target=$dir/out/fifo.tsv; mkfifo "$target" ;;
        @socket) target=$dir/out/socket.tsv; make_special @socket "$target" input || { bad "$name: cannot make $file"; return; } ;;
        @input|@input-hardlink|@input-symlink|@input-dotdot)
          input=$dir/input.tsv; cp "$good/input.tsv" "$input"; keep=$input
          case $file in
            @input) target=$input ;;
            @input-hardlink) target=$dir/link.tsv; ln "$input" "$target" ;;
            @input-symlink) target=$dir/link.tsv; ln -s "$input" "$target" ;;
            @input-dotdot) target=$dir/out/../input.tsv ;;
          esac ;;
        @input-csv) input=$dir/report.csv; cp "$good/input.tsv" "$input"; keep=$input; target=$dir/report.json ;;
        @truth) target=$dir/truth.tsv; cp "$good/truth.tsv" "$target"; extra+=(--truth "$target"); keep=$target ;;
        @layer) net=$dir/net; mkdir -p "$net" && cp "$good"/n32-l?.tsv "$net"/; target=$net/n32-l2.tsv; keep=$target ;;
        @network-archive) net=$(make_archive @archive network "$dir") || { bad "$name: cannot make $file"; return; }
                          target=$net; keep=$net ;;
        *) bad "$name: unknown output path $file"; return ;;
      esac
      if [ "$kind" = out ]; then out=$target; else extra+=(--report "$target"); fi ;;
    *) bad "$name: unknown kind '$kind' in cases.tsv"; return ;;
  esac
  local case_args=()
  [ "$args" != - ] && read -r -a case_args <<< "$args"

  # A late-* case: the faulty line starts in the last rank's byte share [size*(np-1)/np, size).
  local note=""
  if [[ $name == late-* && -n $(line_of_fragment "$expected") ]]; then
    local line size at
    line=$(line_of_fragment "$expected")
    size=$(stat -c %s "$shown")
    at=$(head -n $((line - 1)) "$shown" | wc -c)
    if [ "$at" -lt $((size * (np - 1) / np)) ]; then bad "$name, $np ranks: line $line is not in the last rank's share"; return; fi
    note=" (line $line: rank $((np - 1)) of $np parses it)"
  fi

  [ -n "$keep" ] && cp "$keep" "$dir/kept-before"
  local log=$dir/log
  timeout 60 "${unprivileged[@]}" $MPIRUN -np "$np" sh tests/rank_status.sh "$dir/ranks" "$np" ./sdnn --network "$net" --neurons 32 --layers 3 \
    --input "$input" --inputs 6 --out "$out" -q "${extra[@]}" "${case_args[@]}" < /dev/null > "$log" 2>&1
  local status=$? problems=()
  [ "$status" = 124 ] && problems+=("no end within 60 s (a hang)")
  local statuses
  statuses=$(for r in $(seq 0 $((np - 1))); do cat "$dir/ranks/$r" 2>/dev/null || echo none; done | tr '\n' ' ')
  local errors
  errors=$(grep -c 'sdnn: error' "$log")
  if [ "$expected" = "(success)" ]; then
    [ "$status" = 0 ] || problems+=("mpirun exit $status")
    [ "$statuses" = "$(printf '0 %.0s' $(seq 1 "$np"))" ] || problems+=("rank exits: $statuses")
    [ "$errors" = 0 ] || problems+=("$errors error lines")
    cmp -s "$out" "$good/truth.tsv" || problems+=("categories differ from $good/truth.tsv")
    if [ "$kind" = truth ] && ! grep -q "Challenge: PASS" "$log"; then problems+=("no Challenge: PASS"); fi
  else
    [ "$status" != 0 ] || problems+=("mpirun exit 0")
    for s in $statuses; do
      if [ "$s" = none ] || [ "$s" = 0 ]; then problems+=("rank exits: $statuses (each must be non-zero)"); break; fi
    done
    [ "$errors" = 1 ] || problems+=("$errors 'sdnn: error' lines, not 1")
    local message rest
    message=$(grep -m1 'sdnn: error' "$log")
    rest=${message#*sdnn: error: }
    # The fragment (a glob: * is any text) right after the file's folder: the message names the file.
    # shellcheck disable=SC2053
    if [[ $rest != $expected* && $rest != */$expected* ]]; then problems+=("message is not '<folder>/$expected...'"); fi
    if [ -n "$shown" ] && [[ $rest != "$shown"* ]]; then problems+=("message does not start with the path $shown"); fi
    if [ -n "$keep" ] && ! cmp -s "$keep" "$dir/kept-before"; then problems+=("$keep was changed"); fi
    local left
    left=$(find "$dir/out" -type f | head -3)
    [ -z "$left" ] || problems+=("files left in the output folder: $left")
  fi
  if [ ${#problems[@]} = 0 ]; then
    ok "$name, $np ranks$note"
  else
    local IFS=';'
    bad "$name, $np ranks: ${problems[*]}" "$log"
  fi
  chmod -R u+rwx "$dir" 2>/dev/null
  rm -rf "$dir"
}

while IFS=$'\t' read -r name kind file args expected <&3; do
  [[ -z $name || $name == \#* || $name == case ]] && continue
  [[ -n ${SDNN_CORPUS_CASES:-} && ! $name =~ $SDNN_CORPUS_CASES ]] && continue  # a subset, for debugging
  for np in $rank_counts; do run_case "$name" "$kind" "$file" "$args" "$expected" "$np"; done
done 3< "$corpus/cases.tsv"

echo "$passed $failed $skipped" > "$out_file"
