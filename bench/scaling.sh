#!/usr/bin/env bash
# scaling.sh: a rank x thread scaling study of sdnn. Runs every ranks x threads pair of powers of two
# with ranks*threads <= MAX, for each strategy and hashing mode, REPS times (alternating configurations
# within each repetition, so that machine noise spreads evenly), and writes
#   bench/out/scaling.csv        one row per run: strategy, format, hashing, ranks, threads, N, L,
#                                inputs, read_s, infer_s, rate, imbalance, comm_ratio, oversubscribed
#                                (ranks*threads above the cores available), rep, load1 and busy_others
#                                (the load average and the tasks running besides this script just
#                                before the run: other users' work shows there)
#   bench/out/scaling_ranks.csv  one row per rank per run (sdnn --report): compute_s, comm_s, idle_s
#   PNG plots (gnuplot; gnuplot-nox is installed with apt-get when missing), in $PLOTS (bench/out):
#     scaling_rate.png       median rate against cores (ranks only, threads only), per strategy
#     scaling_time.png       time per rank split into compute, communication and idle, at the most
#                            ranks that fit the cores (1 thread each), each strategy and hashing mode
#     scaling_imbalance.png  median imbalance (max/mean compute) against ranks, with and without hashing
#
# Usage: bench/scaling.sh [MAX] [extra sdnn options...]      (MAX default: the cores available)
# Environment: SDNN (the binary, default ./sdnn), REPS (default 3), STRATEGIES (default "data model"),
#   HASHES (default "none both"), DATA_FORMAT (the data strategy's format, default csr; model is given
#   csc, the only format it accepts, and runs csr/data on one column block: the CSV's format column
#   records what ran), INPUTS (default 6000 rows of the generated default problem; ignored when the extra
#   options give --inputs), PLOTS (folder of the PNGs, default bench/out), PLOT_ONLY=1 (no runs:
#   the table and plots again from the CSVs of the last study), QUIET_WAIT (seconds to wait before
#   each run for the other tasks of a shared machine to finish, default 0).
# Launcher: mpirun --oversubscribe --bind-to none (plus --allow-run-as-root as root); under Slurm
#   (SLURM_JOB_ID set) srun --overcommit, and MAX defaults to the job's CPUs. See
#   bench/slurm_example.sbatch.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SLURM_JOB_ID:-}" ]; then
  cores=$(( ${SLURM_NTASKS:-1} * ${SLURM_CPUS_PER_TASK:-1} ))
  [ -n "${SLURM_CPUS_ON_NODE:-}" ] && [ -z "${SLURM_CPUS_PER_TASK:-}" ] && cores=$(( SLURM_CPUS_ON_NODE * ${SLURM_JOB_NUM_NODES:-1} ))
else
  cores=$(nproc)
fi
max=${1:-$cores}
shift || true
extra=("$@")
REPS=${REPS:-3}
STRATEGIES=${STRATEGIES:-"data model"}
HASHES=${HASHES:-"none both"}
DATA_FORMAT=${DATA_FORMAT:-csr}
INPUTS=${INPUTS:-6000}
PLOTS=${PLOTS:-bench/out}
[[ " ${extra[*]-} " == *" --inputs "* ]] || extra+=(--inputs "$INPUTS")
# The generated problem is checked by the verifier unless told otherwise: timing runs skip it.
[[ " ${extra[*]} " == *" --network "* ]] || extra+=(--no-verify)

launch() {  # launch RANKS THREADS command...
  local r=$1 t=$2; shift 2
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    srun --overcommit -n "$r" -c "$t" "$@"
  else
    local root=; [ "$(id -u)" = 0 ] && root=--allow-run-as-root
    mpirun --oversubscribe --bind-to none $root -np "$r" "$@"
  fi
}

SDNN=${SDNN:-./sdnn}
[ "$SDNN" != ./sdnn ] || [ -x ./sdnn ] || make --no-print-directory sdnn >/dev/null
command -v gnuplot >/dev/null || make --no-print-directory plot-deps

# QUIET_WAIT=S: before each run, wait up to S seconds (checking every 0.5 s) until no other task runs.
others_running() { local running; read -r _ _ _ running _ < /proc/loadavg; echo $(( ${running%/*} - 1 )); }
wait_quiet() {
  local tries=$(( ${QUIET_WAIT:-0} * 2 ))
  while (( tries > 0 )) && (( $(others_running) > 0 )); do sleep 0.5; tries=$(( tries - 1 )); done
}

mkdir -p bench/out "$PLOTS"
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
csv=bench/out/scaling.csv
ranks_csv=bench/out/scaling_ranks.csv
if [ "${PLOT_ONLY:-0}" != 1 ]; then
  echo "strategy,format,hashing,ranks,threads,N,L,inputs,read_s,infer_s,rate,imbalance,comm_ratio,oversubscribed,rep,load1,busy_others" > "$csv"
  echo "strategy,hashing,ranks,threads,rep,rank,compute_s,comm_s,idle_s" > "$ranks_csv"

  pairs=()
  for ((r = 1; r <= max; r *= 2)); do
    for ((t = 1; r * t <= max; t *= 2)); do pairs+=("$r $t"); done
  done
  field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

  echo "scaling.sh: ${#pairs[@]} ranks x threads pairs up to $max ($cores cores), strategies $STRATEGIES, hashing $HASHES, $REPS repetitions" >&2
  for rep in $(seq 1 "$REPS"); do
    for pair in "${pairs[@]}"; do
      read -r r t <<<"$pair"
      over=$(( r * t > cores ? 1 : 0 ))
      for s in $STRATEGIES; do
        format=$DATA_FORMAT; [ "$s" = model ] && format=csc
        for h in $HASHES; do
          wait_quiet
          # The machine may be shared: its load average and the tasks running besides this script,
          # just before the run.
          read -r load _ _ running _ < /proc/loadavg
          busy=$(( ${running%/*} - 1 ))
          line=$(launch "$r" "$t" "$SDNN" -q --threads "$t" --strategy "$s" --format "$format" --hash "$h" \
                   --report "$report/r.json" "${extra[@]}" | grep '^summary ') || true
          if [ -z "$line" ]; then echo "scaling.sh: sdnn failed: $s $h ranks=$r threads=$t" >&2; exit 1; fi
          echo "$s,$(field "$line" format),$h,$r,$t,$(field "$line" neurons),$(field "$line" layers),$(field "$line" inputs),$(field "$line" read_s),$(field "$line" infer_s),$(field "$line" rate),$(field "$line" imbalance),$(field "$line" comm_ratio),$over,$rep,$load,$busy" >> "$csv"
          tail -n +2 "$report/r.csv" | awk -F, -v p="$s,$h,$r,$t,$rep" '$2 == "all" { print p "," $1 "," $6 "," $7 "," $8 }' >> "$ranks_csv"
          echo "  rep $rep: $s hash=$h ranks=$r threads=$t: infer $(field "$line" infer_s) s, rate $(field "$line" rate)" >&2
        done
      done
    done
  done
fi

# Medians and the data files of the plots.
python3 - "$csv" "$ranks_csv" "$report" "$cores" <<'PY'
import csv, statistics, sys, collections
runs = list(csv.DictReader(open(sys.argv[1])))
per_rank = list(csv.DictReader(open(sys.argv[2])))
out, cores = sys.argv[3], int(sys.argv[4])
groups = collections.defaultdict(list)
for r in runs:
    groups[(r["strategy"], r["hashing"], int(r["ranks"]), int(r["threads"]))].append(r)
med = {k: {f: statistics.median(float(r[f]) for r in v) for f in ("infer_s", "rate", "imbalance", "comm_ratio")}
       for k, v in groups.items()}
strategies = sorted({k[0] for k in med})
hashes = sorted({k[1] for k in med}, key=lambda h: h != "none")
# Rate against cores: per strategy (no hashing, else the first mode), ranks only and threads only.
h0 = hashes[0]
with open(f"{out}/rate.dat", "w") as f:
    for s in strategies:
        for label, pick in (("ranks x 1 thread", lambda r, t: t == 1), ("1 rank x threads", lambda r, t: r == 1)):
            f.write(f'"{s}, {label}"\n')
            for (ss, h, r, t), m in sorted(med.items(), key=lambda kv: kv[0][2] * kv[0][3]):
                if ss == s and h == h0 and pick(r, t):
                    f.write(f"{r * t} {m['rate']:.6e}\n")
            f.write("\n\n")
# Imbalance against ranks (1 thread each), per strategy and hashing mode.
with open(f"{out}/imbalance.dat", "w") as f:
    for s in strategies:
        for h in hashes:
            f.write(f'"{s}, hash {h}"\n')
            for (ss, hh, r, t), m in sorted(med.items(), key=lambda kv: kv[0][2]):
                if ss == s and hh == h and t == 1:
                    f.write(f"{r} {m['imbalance']:.4f}\n")
            f.write("\n\n")
# Time per rank at the most ranks that fit the cores (1 thread each): the median run's per-rank split.
fit = [r for (s, h, r, t) in med if t == 1 and r <= cores]
ranks = max(fit) if fit else 1
with open(f"{out}/time.dat", "w") as f:
    for s in strategies:
        for h in hashes:
            key = (s, h, ranks, 1)
            if key not in groups:
                continue
            runs_k = sorted(groups[key], key=lambda r: float(r["infer_s"]))
            rep = runs_k[len(runs_k) // 2]["rep"]
            for p in per_rank:
                if (p["strategy"], p["hashing"], int(p["ranks"]), int(p["threads"]), p["rep"]) == (s, h, ranks, 1, rep):
                    f.write(f'"{s}/{h} r{p["rank"]}" {float(p["compute_s"]):.6f} {float(p["comm_s"]):.6f} {float(p["idle_s"]):.6f}\n')
open(f"{out}/time_ranks", "w").write(str(ranks))
# The table of medians.
print("| strategy | hashing | ranks | threads | oversubscribed | median inference (s) | median rate (edges/s) | median imbalance | median comm/compute |")
print("|---|---|---|---|---|---|---|---|---|")
for (s, h, r, t), m in sorted(med.items()):
    print(f"| {s} | {h} | {r} | {t} | {'yes' if r * t > cores else 'no'} | {m['infer_s']:.3f} | {m['rate']:.3e} | {m['imbalance']:.3f} | {m['comm_ratio']:.3f} |")
loads = [float(r["load1"]) for r in runs if r.get("load1")]
if loads:
    busy = [int(r["busy_others"]) for r in runs]
    open(f"{out}/busy", "w").write(f"{statistics.median(busy):g}")
    print(f"\nBefore the runs: load average (1 min) median {statistics.median(loads):.2f}, max {max(loads):.2f}; "
          f"other tasks running: median {statistics.median(busy):g}, max {max(busy)} ({cores} cores)")
PY

n=$(sed -n 2p "$csv" | cut -d, -f6); l=$(sed -n 2p "$csv" | cut -d, -f7); m=$(sed -n 2p "$csv" | cut -d, -f8)
reps=$(tail -n +2 "$csv" | cut -d, -f15 | sort -n | tail -1)
title="N=$n, L=$l, $m inputs, median of $reps"
[ -s "$report/busy" ] && title="$title; other tasks running: median $(cat "$report/busy")"
gnuplot <<EOF
set terminal pngcairo size 900,560 font ",10"
set key below
set grid

set output "$PLOTS/scaling_rate.png"
set title "sdnn rate against cores (right of the dashed line: oversubscribed)\n$title"
set logscale x 2
set xlabel "cores used (ranks x threads)"
set ylabel "rate (edges/s)"
set yrange [0:*]
set format y "%.1e"
set arrow 1 from $cores, graph 0 to $cores, graph 1 nohead dashtype 2
plot for [i=0:*] "$report/rate.dat" index i using 1:2 with linespoints lw 2 title columnheader(1)
unset arrow 1

set output "$PLOTS/scaling_imbalance.png"
set title "imbalance (max / mean compute over ranks), 1 thread per rank\n$title"
set xlabel "ranks"
set ylabel "imbalance"
set format y "%.2f"
set yrange [*:*]
set arrow 1 from $cores, graph 0 to $cores, graph 1 nohead dashtype 2
plot for [i=0:*] "$report/imbalance.dat" index i using 1:2 with linespoints lw 2 title columnheader(1)
unset arrow 1

set output "$PLOTS/scaling_time.png"
set title sprintf("time per rank, %s ranks x 1 thread, median run\n$title", "$(cat "$report/time_ranks")")
unset logscale x
set xlabel ""
set ylabel "seconds"
set format y "%.2f"
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30
plot "$report/time.dat" using 2:xtic(1) title "compute", "" using 3 title "communication", "" using 4 title "idle"
EOF
echo "scaling.sh: runs in $csv and $ranks_csv; plots $PLOTS/scaling_rate.png, scaling_time.png, scaling_imbalance.png" >&2
