# Sourced by scripts/serve and scripts/test: make .venv and install the project into it
# when it is missing or when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TRACKLINE_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
stamp="$venv/.trackline-installed"
want="$(cat "$root/pyproject.toml" | cksum)-$1"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$root[$1]"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
