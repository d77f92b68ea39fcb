#!/usr/bin/env bash
# The installed package on its own: build a wheel, install it into a fresh venv (torch pinned
# first), and from an empty folder run the CLI's dry run, the dataset listing and one tiny
# sweep, with no source tree on the path.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
python="${PYTHON:-python3}"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip wheel --quiet --no-deps -w "$work/dist" "$repo"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet $torch_spec
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/gnnleaky-*.whl
mkdir "$work/empty" && cd "$work/empty"
env -u PYTHONPATH "$work/venv/bin/python" -c \
  "import gnnleaky, sys; assert '$repo' not in gnnleaky.__file__, gnnleaky.__file__"
env -u PYTHONPATH "$work/venv/bin/gnnleaky" sweep --dry-run
env -u PYTHONPATH "$work/venv/bin/gnnleaky" datasets
env -u PYTHONPATH "$work/venv/bin/gnnleaky" sweep quick --depths 2 --seeds 0 \
  --activations relu,leaky_relu --alpha 0.2 --epochs 3 --no-progress --out tiny.sqlite
env -u PYTHONPATH "$work/venv/bin/gnnleaky" report tiny.sqlite --out tiny-report
test -s tiny-report/summary.md
echo "wheel check passed"
