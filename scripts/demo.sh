#!/usr/bin/env bash
# The main job on the built-in local default: compile a sample topology, swap it in on this
# machine as process nodes wired by VDE switches, and show the nodes and a ping across it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

topology=${1:-examples/muppetnet.ns}
expdir=experiments/demo/$(basename "${topology%.*}")
containerize --default-container=process --size=1 --force --out "$expdir" demo "$(basename "${topology%.*}")" "$topology"
containerize swapin "$expdir"
echo "== nodes (pnode -> nodes)"
containerize list "$expdir"
echo "== status"
containerize status "$expdir"
echo "== ping across the topology (beaker on one LAN to animal on the other)"
containerize exec "$expdir" beaker -- ping -c 3 animal
echo "== swap out with: containerize swapout $expdir"
