#!/usr/bin/env bash
# A separate environment with the full `mlflow` package, for its UI server (`mlflow ui`) over a run's MLflow store.
# Why separate: the project's environment carries only `mlflow-skinny` (client and file store), because the full
# package pins pyarrow<26 up to 3.17 (the newest this index offers) and the project needs pyarrow>=26. A tracking UI is
# a separate service anyway. Idempotent: does nothing when the environment already has this version.
#   scripts/ensure_mlflow_ui.sh            # creates .venv-mlflow-ui (or $MLFLOW_UI_VENV)
#   MLFLOW_ALLOW_FILE_STORE=true .venv-mlflow-ui/bin/mlflow ui --backend-store-uri runs/<name>/mlruns
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
UI_VENV="${MLFLOW_UI_VENV:-.venv-mlflow-ui}"
VERSION="3.17.2"

if [ -x "$UI_VENV/bin/mlflow" ] && "$UI_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mlflow') != '$VERSION')" 2>/dev/null; then
    exit 0
fi
"$PYTHON" -m venv "$UI_VENV"
"$UI_VENV/bin/python" -m pip install --quiet --upgrade pip
"$UI_VENV/bin/python" -m pip install --quiet "mlflow==$VERSION"
echo "mlflow ui installed: $UI_VENV/bin/mlflow"
