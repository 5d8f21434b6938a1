#!/usr/bin/env bash
# The whole test suite: lint, compiler tests, end-to-end swap-ins, molecule scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export ANSIBLE_CONFIG=$PWD/ansible.cfg

ruff check .
yamllint -s .
ansible-lint --profile production
python3 -m pytest -q
for scenario in molecule/*/; do
    molecule test -s "$(basename "$scenario")"
done
