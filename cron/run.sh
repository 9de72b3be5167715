#!/usr/bin/env bash
# Cron wrapper for retarget-exporter: one locked, logged run of the feeds and/or audiences for one config.
#
#   cron/run.sh CONFIG [feeds|audiences|all] [ARGS...]
#
# See usage() below for the modes, environment variables and exit codes. Decisions worth knowing:
#
# * One lock per config (flock on <dir of CONFIG>/.retarget.lock, or $RETARGET_LOCK), so a feeds run and an
#   audiences run for the same shop never overlap either. The lock is held by an open file descriptor, so it
#   is released by the kernel however this script ends (no stale lock files to clean up).
# * Lock busy and RETARGET_LOCK_WAIT=0 (the default): the run is skipped and exits 0. A skipped cron run is
#   not a failure: the run holding the lock is doing the work, and the next scheduled run catches up (every
#   command is safe to re-run). The skip is written to this run's log, and to the terminal when interactive.
# * Lock busy and RETARGET_LOCK_WAIT=N>0: wait up to N seconds; if it is still held, exit 75 (EX_TEMPFAIL)
#   with a message on stderr, so cron mails it. Use this for a job that must not be skipped quietly
#   (the nightly audiences run).
# * Every step of the mode runs even when an earlier independent step failed (failing feeds do not stop
#   the audiences); only `audiences sync` depends on `audiences build` and is skipped when the build failed.
#   The exit code is the highest exit code among the steps (a config error 2 shows as 2, not as 1).
# * Output: every line goes to a 0600 log file, prefixed with a UTC timestamp. When stdout is a terminal it
#   is also shown there (tee). Under cron (stdout not a terminal) the script prints nothing on success or
#   on a skip, and a short summary on stderr when something failed, so MAILTO only hears about problems.

set -euo pipefail

readonly EX_USAGE=2     # the tool's "usage or config error": nothing ran
readonly EX_TEMPFAIL=75 # sysexits.h: the lock was still held after RETARGET_LOCK_WAIT seconds
readonly LOCK_BUSY=200  # flock's exit code when the lock is held (-E), distinct from its own errors

prog=${0##*/}

usage() {
    cat <<EOF
Usage: $prog CONFIG [feeds|audiences|all] [ARGS...]

Runs the retarget-exporter jobs for one config file, under a lock, with a timestamped log.

Modes (default: all):
  feeds      feedgen build --config CONFIG
  audiences  audiences build --config CONFIG [ARGS...], then audiences sync --config CONFIG
             (sync only when the build succeeded)
  all        feeds, then audiences (the audiences run even when the feeds failed)

ARGS after the mode are passed to 'audiences build' (modes audiences and all only), e.g.
  $prog fixtures/demo/retarget.yaml all --as-of 2026-11-20

Environment:
  RETARGET_LOCK       lock file (default: <dir of CONFIG>/.retarget.lock; one lock per config)
  RETARGET_LOCK_WAIT  seconds to wait for the lock (whole number, default 0). If another run still holds it:
                      with 0 the run is skipped and exits 0; with more than 0 it exits 75 (EX_TEMPFAIL)
  RETARGET_LOG_DIR    log folder (default: <dir of CONFIG>/out/logs); one file per run,
                      run-<UTC YYYYmmddTHHMMSSZ>-<mode>.log, mode 0600
  RETARGET_BIN        folder holding feedgen and audiences (default: the project's .venv/bin next to this
                      script if it exists, else PATH)

Exit codes (once steps ran: the highest exit code among them, so a config error 2 is not hidden by a 1):
  0   every step succeeded, or the run was skipped because another run held the lock (RETARGET_LOCK_WAIT=0)
  1   a step failed (data, upload, guard)
  2   usage or config error: a step's, or this script's before anything ran (bad arguments, log or lock
      file cannot be created, flock missing)
  75  the lock was still held after RETARGET_LOCK_WAIT seconds (EX_TEMPFAIL); nothing ran
  127 a command (feedgen, audiences) was not found
EOF
}

usage_error() {
    printf '%s: %s\n\n' "$prog" "$1" >&2
    usage >&2
    exit "$EX_USAGE"
}

die() { # a setup error before any step ran: stderr (cron mails it), and the log when it exists
    if [[ -n ${log_file:-} ]]; then
        log "error: $1"
    fi
    printf '%s: %s\n' "$prog" "$1" >&2
    exit "${2:-$EX_USAGE}"
}

# ---- arguments ------------------------------------------------------------------------------------------

if [[ $# -ge 1 && ( $1 == -h || $1 == --help ) ]]; then
    usage
    exit 0
fi
[[ $# -ge 1 ]] || usage_error "CONFIG is missing"
config=$1
shift
[[ -f $config ]] || usage_error "CONFIG is not a file: $config"
mode=all
if [[ $# -ge 1 ]]; then
    mode=$1
    shift
fi
case $mode in
    feeds | audiences | all) ;;
    *) usage_error "unknown mode: $mode (feeds, audiences or all)" ;;
esac
build_args=("$@")
if [[ $mode == feeds && ${#build_args[@]} -gt 0 ]]; then
    usage_error "extra arguments only apply to 'audiences build' (modes audiences and all): ${build_args[*]}"
fi

lock_wait=${RETARGET_LOCK_WAIT:-0}
[[ $lock_wait =~ ^[0-9]+$ ]] || usage_error "RETARGET_LOCK_WAIT must be a whole number of seconds: $lock_wait"
lock_wait=$((10#$lock_wait))

command -v flock >/dev/null 2>&1 || die "flock is not installed (util-linux); cannot lock"

config_dir=$(dirname -- "$config")
lock_path=${RETARGET_LOCK:-$config_dir/.retarget.lock}
log_dir=${RETARGET_LOG_DIR:-$config_dir/out/logs}

# Resolve a symlinked script (e.g. /usr/local/bin/retarget-run -> <project>/cron/run.sh) to the project.
script_path=$(readlink -f -- "${BASH_SOURCE[0]}" 2>/dev/null) || script_path=${BASH_SOURCE[0]}
script_dir=$(cd -- "$(dirname -- "$script_path")" && pwd -P)
if [[ -n ${RETARGET_BIN:-} ]]; then
    bin_dir=$RETARGET_BIN
elif [[ -d $script_dir/../.venv/bin ]]; then
    bin_dir=$(dirname -- "$script_dir")/.venv/bin
else
    bin_dir= # PATH
fi

if [[ -t 1 ]]; then
    interactive=1
else
    interactive=0
fi

# ---- log file -------------------------------------------------------------------------------------------

# The log folder gets 0700 when this script creates it; its parents (such as out/) keep the usual mode,
# because the feeds are published under out/ too. An existing folder is left as it is.
if [[ ! -d $log_dir ]]; then
    mkdir -p -- "$(dirname -- "$log_dir")" 2>/dev/null || true
    mkdir -m 700 -- "$log_dir" 2>/dev/null || true # a concurrent run may have just created it
fi
[[ -d $log_dir ]] || die "cannot create the log folder: $log_dir"

run_stamp=$(date -u +%Y%m%dT%H%M%SZ)
log_file=
# noclobber makes the create atomic: a second run started in the same second (for instance one that is
# about to be skipped) gets its own file, run-<stamp>-<mode>.<n>.log, instead of writing into the first's.
for ((n = 1; n <= 100; n++)); do
    candidate=$log_dir/run-$run_stamp-$mode.log
    if ((n > 1)); then
        candidate=$log_dir/run-$run_stamp-$mode.$n.log
    fi
    if (umask 077 && set -o noclobber && : >"$candidate") 2>/dev/null; then
        log_file=$candidate
        break
    fi
    [[ -e $candidate ]] || break # not a name clash: the folder is not writable
done
[[ -n $log_file ]] || die "cannot create a log file in $log_dir"

# Prefix each line read from stdin with a UTC timestamp and TAG.
stamp() {
    local tag=$1 line
    export TZ=UTC # runs in a pipeline subshell: the steps' own TZ is untouched
    while IFS= read -r line || [[ -n $line ]]; do
        printf '%(%Y-%m-%dT%H:%M:%SZ)T %s %s\n' -1 "$tag" "$line"
    done
}

# Append stdin to the log, and copy it to the terminal when interactive.
to_log() {
    if ((interactive)); then
        tee -a -- "$log_file"
    else
        cat >>"$log_file"
    fi
}

log() {
    printf '%s\n' "$*" | stamp run: | to_log
}

# ---- lock -----------------------------------------------------------------------------------------------

log "start mode=$mode config=$config pid=$$ user=$(id -un 2>/dev/null || id -u) host=$(hostname 2>/dev/null || echo '?')"
if ((${#build_args[@]})); then
    log "extra arguments for audiences build: ${build_args[*]}"
fi

# fd 9 stays open (and locked) until this script exits; the steps inherit it, so a step that outlives a
# killed wrapper still keeps the next run out until it ends.
if ! { exec 9>>"$lock_path"; } 2>/dev/null; then
    die "cannot open the lock file: $lock_path"
fi
lock_rc=0
if ((lock_wait > 0)); then
    log "waiting up to ${lock_wait}s for the lock $lock_path"
    flock -w "$lock_wait" -E "$LOCK_BUSY" 9 || lock_rc=$?
else
    flock -n -E "$LOCK_BUSY" 9 || lock_rc=$?
fi
if ((lock_rc == LOCK_BUSY)); then
    if ((lock_wait > 0)); then
        log "another run still holds the lock after ${lock_wait}s; giving up (exit $EX_TEMPFAIL)"
        log "end result=lock-timeout exit=$EX_TEMPFAIL"
        printf '%s: another run still holds the lock %s after %ss; not run (exit %s). Log: %s\n' \
            "$prog" "$lock_path" "$lock_wait" "$EX_TEMPFAIL" "$log_file" >&2
        exit "$EX_TEMPFAIL"
    fi
    # Not a failure: the run holding the lock is doing the work; exit 0 so cron stays quiet.
    log "another run holds the lock; skipped"
    log "end result=skipped exit=0"
    exit 0
elif ((lock_rc != 0)); then
    die "flock failed on $lock_path (exit $lock_rc)"
fi
log "lock acquired: $lock_path"

# ---- steps ----------------------------------------------------------------------------------------------

overall=0
summary=()
last_rc=0

# run_step NAME COMMAND [ARGS...]: run one step, its stdout+stderr stamped into the log; sets last_rc.
run_step() {
    local name=$1 cmd=$2
    shift 2
    local exe=$cmd
    if [[ -n $bin_dir ]]; then
        exe=$bin_dir/$cmd
    fi
    local started=$SECONDS rc=0
    log "step $name: $exe $*"
    if ! command -v -- "$exe" >/dev/null 2>&1; then
        rc=127
        log "step $name: command not found: $exe"
    else
        local statuses
        if "$exe" "$@" </dev/null 2>&1 | stamp "$name:" | to_log; then
            rc=0
        else
            statuses=("${PIPESTATUS[@]}")
            rc=${statuses[0]}
            if ((rc == 0)); then # the step succeeded but its output could not be logged
                log "step $name: writing the log failed (${statuses[*]})"
                rc=1
            fi
        fi
    fi
    local took=$((SECONDS - started))
    log "step $name: exit $rc in ${took}s"
    summary+=("$name=$rc")
    if ((rc > overall)); then
        overall=$rc
    fi
    last_rc=$rc
}

skip_step() {
    log "step $1: skipped ($2)"
    summary+=("$1=skipped")
}

config_args=(--config "$config")

if [[ $mode == feeds || $mode == all ]]; then
    run_step feeds feedgen build "${config_args[@]}"
fi
if [[ $mode == audiences || $mode == all ]]; then
    run_step audiences-build audiences build "${config_args[@]}" "${build_args[@]}"
    if ((last_rc == 0)); then
        run_step audiences-sync audiences sync "${config_args[@]}"
    else
        skip_step audiences-sync "audiences build failed"
    fi
fi

if ((overall == 0)); then
    result=ok
else
    result=failed
fi
log "end result=$result exit=$overall steps: ${summary[*]} duration=${SECONDS}s"
if ((overall != 0 && !interactive)); then
    printf '%s: %s run for %s failed (exit %s): %s. Log: %s\n' \
        "$prog" "$mode" "$config" "$overall" "${summary[*]}" "$log_file" >&2
fi
exit "$overall"
