# common.sh: what the MPI benchmark scripts share; sourced (`. bench/common.sh`) from the
# repository root. Sets:
#   mpirun_cmd  mpirun with --oversubscribe (and --allow-run-as-root when root)
#   data        the official data folder ($SDNN_DATA or ../shared/data/graphchallenge)
#   official    sdnn's options for the 120 official 1024-neuron layers and the first 1200 inputs
#   field LINE KEY  the value of KEY=... in an sdnn summary line
mpirun_cmd="mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)"
data=${SDNN_DATA:-../shared/data/graphchallenge}
official=(--network "$data/neuron1024" --neurons 1024 --layers 120 --inputs 1200
          --input "$data/sparse-images-1024-first1200.tsv")
field() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p"; }
