#!/usr/bin/env bash
# Run the Autobahn|Testsuite (wstest) against a WebSocket server or client.
#
#   tools/autobahn.sh server [options] -- CMD...   CMD starts an echo server on 127.0.0.1:$PORT
#   tools/autobahn.sh client [options] -- CMD...   CMD runs a client against ws://127.0.0.1:$PORT
#   tools/autobahn.sh setup                        only make the wstest virtualenv
#
# Options:
#   --cases LIST     comma-separated case ids or patterns ("1.*,2.*"); default: all
#   --fast           the CI subset: $FAST_CASES
#   --exclude LIST   cases to leave out (comma-separated)
#   --agent NAME     name of the tested peer in the report (default: testee)
#   --outdir DIR     report directory (default: tools/autobahn-reports/<mode>)
#   --port N         port to use (default: a free one picked at random)
#   --timeout S      bound on the whole wstest run / client run (default: 3600)
#   --verbose        show wstest's and the testee's output as they run
#
# The command after "--" gets PORT (and AUTOBAHN_URL, AUTOBAHN_AGENT) in its
# environment.  Exit status: 0 when every case is OK or INFORMATIONAL (for
# both behavior and behaviorClose), 1 when one is not, 2 on any other error.
# See tools/README.md.
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${AUTOBAHN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cyclone-autobahn}
PYTHON3=${AUTOBAHN_PYTHON3:-python3}
REQUIREMENTS=$TOOLS_DIR/autobahn-requirements.txt
REPORT_PY=$TOOLS_DIR/autobahn_report.py
WSTEST=$CACHE_DIR/py27/bin/wstest
FAST_CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,12.1.*,13.1.*"
START_TIMEOUT=${AUTOBAHN_START_TIMEOUT:-30}   # seconds to wait for a port to listen
STOP_TIMEOUT=10                               # seconds between SIGTERM and SIGKILL

log() { echo "autobahn.sh: $*" >&2; }
die() { log "$*"; exit 2; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" \
        | sed "s/\$FAST_CASES/$FAST_CASES/"
}

find_python27() {
    local candidate
    for candidate in "${AUTOBAHN_PYTHON27:-}" \
                     "$HOME/.pyenv/versions/2.7.18/bin/python" \
                     "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions/2.7.18/bin/python")" \
                     "$(command -v python2.7 || true)"; do
        if [[ -n $candidate && -x $candidate ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# Make $CACHE_DIR/py27 (CPython 2.7 + pinned autobahntestsuite) unless it is
# there already for the current tools/autobahn-requirements.txt.
ensure_venv() {
    local stamp=$CACHE_DIR/py27/.cyclone-requirements-sha256 want
    want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
    if [[ -x $WSTEST && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/.lock"
    flock 9    # two runs at once: the second waits, then finds it made
    if [[ -x $WSTEST && -f $stamp && $(<"$stamp") == "$want" ]]; then
        exec 9>&-
        return 0
    fi
    local py27 started=$SECONDS
    py27=$(find_python27) || die "no Python 2.7 found (set AUTOBAHN_PYTHON27 or: pyenv install 2.7.18)"
    log "making the wstest virtualenv in $CACHE_DIR (python 2.7: $py27); this takes about a minute"
    rm -rf "$CACHE_DIR/boot" "$CACHE_DIR/py27"
    local install_log=$CACHE_DIR/install.log
    : >"$install_log"
    {
        # virtualenv 20.22 dropped Python 2.7 targets; run an older one from Python 3.
        "$PYTHON3" -m venv "$CACHE_DIR/boot" &&
        "$CACHE_DIR/boot/bin/pip" install --disable-pip-version-check "virtualenv<20.22" &&
        VIRTUALENV_OVERRIDE_APP_DATA=$CACHE_DIR/virtualenv-app-data \
            "$CACHE_DIR/boot/bin/virtualenv" -p "$py27" "$CACHE_DIR/py27" &&
        "$CACHE_DIR/py27/bin/pip" install --disable-pip-version-check --no-python-version-warning \
            -r "$REQUIREMENTS"
    } >>"$install_log" 2>&1 || {
        tail -n 30 "$install_log" >&2
        die "making the wstest virtualenv failed (full log: $install_log)"
    }
    "$WSTEST" --autobahnversion >&2 || die "wstest does not start"
    echo "$want" >"$stamp"
    log "wstest virtualenv ready in $((SECONDS - started)) s"
    exec 9>&-
}

free_port() {
    "$PYTHON3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

is_listening() {  # port
    if command -v ss >/dev/null; then
        [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    echo $((t / 1000))
}

# Poll (bounded) until something listens on $1; fail early if process $2 died.
wait_listening() {  # port pid what
    local deadline=$(($(now_ms) + START_TIMEOUT * 1000))
    until is_listening "$1"; do
        if ! kill -0 "$2" 2>/dev/null; then
            log "$3 exited before listening on 127.0.0.1:$1"
            return 1
        fi
        if (($(now_ms) >= deadline)); then
            log "$3 not listening on 127.0.0.1:$1 after ${START_TIMEOUT} s"
            return 1
        fi
        sleep 0.05
    done
}

# Stop a process group started with setsid: SIGTERM, bounded wait, SIGKILL.
stop_group() {  # pid
    local pid=$1 deadline
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM -- "-$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
    while kill -0 "$pid" 2>/dev/null && (($(now_ms) < deadline)); do
        sleep 0.05
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

BACKGROUND_PID= FOREGROUND_PID=
cleanup() {
    local pid
    for pid in "$FOREGROUND_PID" "$BACKGROUND_PID"; do
        [[ -n $pid ]] && stop_group "$pid"
    done
    FOREGROUND_PID= BACKGROUND_PID=
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run "$@" under timeout (which makes its own process group) with output to
# $log_file (and to stderr too with --verbose); return its exit status.
# It runs in the background and is waited for, so that an interrupt reaches
# the trap at once and cleanup can stop it.
run_bounded() {  # log_file cmd...
    local log_file=$1 rc=0
    shift
    if ((verbose)); then
        timeout -k 10 "$timeout" "$@" > >(tee -a "$log_file" >&2) 2>&1 </dev/null &
    else
        timeout -k 10 "$timeout" "$@" >>"$log_file" 2>&1 </dev/null &
    fi
    FOREGROUND_PID=$!
    wait "$FOREGROUND_PID" || rc=$?
    FOREGROUND_PID=
    return "$rc"
}

start_background() {  # log_file cmd...
    local log_file=$1
    shift
    if ((verbose)); then
        setsid "$@" > >(tee -a "$log_file" >&2) 2>&1 </dev/null &
    else
        setsid "$@" >>"$log_file" 2>&1 </dev/null &
    fi
    BACKGROUND_PID=$!
}

# All of the run is in main, so that bash has read the whole of it before it
# starts: editing or checking out this file during a (long) run cannot change
# what the run does.
main() {
    [[ $# -ge 1 ]] || { usage >&2; exit 2; }
    mode=$1
    shift
    case $mode in
        server|client) ;;
        setup) ensure_venv; exit 0 ;;
        -h|--help|help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac

    cases="*" exclude="" agent=testee outdir="" port=${AUTOBAHN_PORT:-} timeout=3600 verbose=0
    while [[ $# -gt 0 ]]; do
        case $1 in
            --cases) cases=${2:?--cases needs a value}; shift 2 ;;
            --cases=*) cases=${1#*=}; shift ;;
            --fast) cases=$FAST_CASES; shift ;;
            --exclude) exclude=${2:?--exclude needs a value}; shift 2 ;;
            --exclude=*) exclude=${1#*=}; shift ;;
            --agent) agent=${2:?--agent needs a value}; shift 2 ;;
            --agent=*) agent=${1#*=}; shift ;;
            --outdir) outdir=${2:?--outdir needs a value}; shift 2 ;;
            --outdir=*) outdir=${1#*=}; shift ;;
            --port) port=${2:?--port needs a value}; shift 2 ;;
            --port=*) port=${1#*=}; shift ;;
            --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
            --timeout=*) timeout=${1#*=}; shift ;;
            --verbose|-v) verbose=1; shift ;;
            --) shift; break ;;
            -h|--help) usage; exit 0 ;;
            *) die "unknown option $1 (the command goes after --)" ;;
        esac
    done
    [[ $# -gt 0 ]] || die "no command given after --"
    [[ $agent =~ ^[A-Za-z0-9._-]+$ ]] || die "--agent: letters, digits, . _ - only"

    ensure_venv

    outdir=${outdir:-$TOOLS_DIR/autobahn-reports/${mode}}
    mkdir -p "$outdir"
    outdir=$(cd "$outdir" && pwd)
    # Remove what an earlier run wrote, so a stale report is never read.
    rm -f "$outdir"/index.json "$outdir"/index.html "$outdir"/*_case_*.json "$outdir"/*_case_*.html \
          "$outdir"/spec.json "$outdir"/wstest.log "$outdir"/testee.log
    port=${port:-$(free_port)}
    url="ws://127.0.0.1:$port"
    spec=$outdir/spec.json
    "$PYTHON3" "$REPORT_PY" spec "$mode" --url "$url" --outdir "$outdir" \
        --cases "$cases" --exclude "$exclude" --agent "$agent" -o "$spec"
    export PORT=$port AUTOBAHN_URL=$url AUTOBAHN_AGENT=$agent

    log "$mode mode, cases: $cases${exclude:+ (excluding $exclude)}; $url; reports in $outdir"
    started=$SECONDS
    status=0

    if [[ $mode == server ]]; then
        # The testee is the server: start it, then run wstest as the fuzzing client.
        start_background "$outdir/testee.log" "$@"
        wait_listening "$port" "$BACKGROUND_PID" "the server" || {
            tail -n 20 "$outdir/testee.log" >&2
            exit 2
        }
        log "server listening after $((SECONDS - started)) s; running wstest -m fuzzingclient"
        run_bounded "$outdir/wstest.log" env PYTHONUNBUFFERED=1 "$WSTEST" -m fuzzingclient -s "$spec" || status=$?
        if ! kill -0 "$BACKGROUND_PID" 2>/dev/null; then
            log "warning: the server exited during the run (see $outdir/testee.log)"
        fi
        cleanup
        expected=$(sed -n 's/.*will run \([0-9]*\) test cases against.*/\1/p' "$outdir/wstest.log" | head -n 1)
    else
        # The testee is the client: start wstest as the fuzzing server, run the client.
        start_background "$outdir/wstest.log" env PYTHONUNBUFFERED=1 "$WSTEST" -m fuzzingserver -s "$spec" --webport 0
        wait_listening "$port" "$BACKGROUND_PID" "wstest fuzzingserver" || {
            tail -n 20 "$outdir/wstest.log" >&2
            exit 2
        }
        log "wstest listening after $((SECONDS - started)) s; running the client"
        run_bounded "$outdir/testee.log" "$@" || status=$?
        cleanup
        expected=$(sed -n 's/.*will run \([0-9]*\) test cases for any clients.*/\1/p' "$outdir/wstest.log" | head -n 1)
    fi

    if ((status == 124 || status == 137)); then
        log "timed out after $timeout s (--timeout)"
    elif ((status != 0)); then
        log "warning: $([[ $mode == server ]] && echo wstest || echo the client) exited with status $status"
    fi
    log "run took $((SECONDS - started)) s; logs: $outdir/wstest.log, $outdir/testee.log"
    [[ -n $expected ]] || die "wstest did not say how many cases it would run (see $outdir/wstest.log)"

    report_status=0
    "$PYTHON3" "$REPORT_PY" summary "$outdir/index.json" --agent "$agent" \
        --expect-cases "$expected" || report_status=$?
    [[ -f $outdir/index.html ]] && log "HTML report: $outdir/index.html"
    exit "$report_status"
}

main "$@"
exit $?
