#!/bin/sh
# The guest side of `wfbuild live memcached` (busybox sh, run by the VM harness's /init).
# For each mode in $LIVE_MODES (local, global) from this one boot: start the enabled memcached
# (WF_LOGFILE into /results/MODE, WF_GLOBAL=1 for global), start memcaslap and memload (our
# client, which records every request's latency), then every $LIVE_INTERVAL seconds trigger a
# transition through wfpatch-ctl: apply $LIVE_BUNDLE, then roll it back, $LIVE_CYCLES times (with
# no bundle: `next`, a migration without a patch, for both steps); after each step's quiet
# interval, memccapable (so the next step comes $LIVE_INTERVAL + memccapable's time later).
# Then stop everything and leave the results in /results/MODE.
#
# Environment: LIVE_MODES, LIVE_CYCLES, LIVE_INTERVAL (seconds, may be fractional), LIVE_CONNS,
# LIVE_BUNDLE (guest path or empty), LIVE_MEMCACHED, LIVE_MEMLOAD, LIVE_CTL, LIVE_THREADS, LIVE_THINK_US,
# LIVE_PIN (exe: WF_PIN=exe for the server), LIVE_CAPABLE_EVERY (memccapable after the steps of every K-th cycle and of the last; default 1),
# LIVE_FAULT (test hooks: `kill-client@N` kills the load clients before cycle N, `term-server@N`
# sends SIGTERM to memcached right after cycle N's apply was triggered, `bad-bundle@N` applies a
# cut copy of the bundle on top of cycle N's patch, which must be refused with the server left on
# its generation: bad-bundle.json holds the runtime's status before and after),
# LIVE_CNE_PROBE (cne-probe.c's library: memcached runs with it preloaded and a `watch
# connevents` client attached; after the baseline and every step one new connection, and which
# code formatted its conn_new line — memcached's own _logger_parse_cne or the patch's — goes
# into cne.jsonl; the watcher's lines into watch.txt).
set -u
R=${WFVM_RESULTS:-/results}
PORT=${LIVE_PORT:-11211}
say() { echo "live: $*"; }
now_cs() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}"; }
memfree() { awk '/^MemFree:/ { print $2 }' /proc/meminfo; }
# The server's minor page faults so far (/proc/PID/stat field 10): a new generation's page
# tables fill on fault, so they show what a migration costs the threads afterwards.
minflt() { awk '{ print $10 }' "/proc/$1/stat" 2>/dev/null || echo null; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo null; }
# The server's mappings (a patch kept mapped after its rollback shows here).
maps() { wc -l < "/proc/$1/maps" 2>/dev/null || echo null; }
# Sleeps until uptime centisecond $1.
sleep_until() {
  rem=$(( $1 - $(now_cs) ))
  [ "$rem" -gt 0 ] && sleep "$(( rem / 100 )).$(printf %02d $(( rem % 100 )))"
  return 0
}
alive() { kill -0 "$1" 2>/dev/null; }
# memcached's own count of the memory it allocated for items (slab pages), KiB: RSS minus this
# is what the server holds besides its cache.
cache_kib() {
  printf 'stats slabs\r\nquit\r\n' | timeout 5 nc 127.0.0.1 "$PORT" 2>/dev/null |
    awk '/^STAT total_malloced / { v = int($3 / 1024) } END { print (v == "" ? "null" : v) }'
}

# Where code address $1 lies in the server: memcached (its own file), patch (an anonymous r-x
# mapping: a patch's code), or what else maps it.
code_at() {
  [ -n "$1" ] || { echo none; return; }
  a=$(($1))
  while read -r range perms _ _ _ path; do
    lo=$((0x${range%-*})) hi=$((0x${range#*-}))
    if [ "$a" -ge "$lo" ] && [ "$a" -lt "$hi" ]; then
      case "$path" in
        *memcached*) echo memcached ;;
        "") case "$perms" in r-x*) echo patch ;; *) echo "anonymous $perms" ;; esac ;;
        *) echo "$path" ;;
      esac
      return
    fi
  done < "/proc/$MC/maps"
  echo unmapped
}

# With LIVE_CNE_PROBE: one new connection; the logger thread formats its conn_new line for the
# watcher, and the probe notes the caller. $1 cycle, $2 step.
cne_probe() {
  [ -n "${LIVE_CNE_PROBE:-}" ] || return 0
  n0=$(cat "$D/cne.log" 2>/dev/null | wc -l)
  printf 'version\r\nquit\r\n' | timeout 5 nc 127.0.0.1 $PORT > /dev/null 2>&1
  i=0
  while [ "$(cat "$D/cne.log" 2>/dev/null | wc -l)" -le "$n0" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  addr=$(tail -n 1 "$D/cne.log" 2>/dev/null)
  echo "{\"cycle\":$1,\"step\":\"$2\",\"caller\":\"$addr\",\"in\":\"$(code_at "$addr")\"}" >> "$D/cne.jsonl"
}

# One transition; appends a JSON line to cycles.jsonl. $1 cycle, $2 step (apply|rollback).
step() {
  cycle=$1 what=$2
  if [ -n "$LIVE_BUNDLE" ]; then
    if [ "$what" = apply ]; then req="apply $LIVE_BUNDLE"; else req=rollback; fi
  else
    req=next
  fi
  before=$(memfree)
  flt0=$(minflt "$MC")
  t0=$(now_cs)
  # shellcheck disable=SC2086
  timeout 60 "$LIVE_CTL" "$MC" $req >> "$D/ctl.log" 2>&1
  ctl=$?
  after=$(memfree)
  cne_probe "$cycle" "$what"
  echo "{\"cycle\":$cycle,\"step\":\"$what\",\"request\":\"$req\",\"ctlExit\":$ctl,\"capableExit\":null,\"memFreeBeforeKiB\":$before,\"memFreeAfterKiB\":$after,\"rssAfterKiB\":$(rss "$MC"),\"mapsAfter\":$(maps "$MC"),\"cacheKiB\":$( [ "$what" = rollback ] && cache_kib || echo null),\"minFltBefore\":$flt0,\"minFltAfter\":$(minflt "$MC"),\"uptimeCs\":$t0}" >> "$D/cycles.jsonl"
}

# memccapable after step $2 of cycle $1, run just before the next step (so it never overlaps a
# patch window); its span goes into cycles.jsonl, the analysis leaves it out of the baseline.
conformance() {
  cycle=$1 what=$2
  t0=$(now_cs)
  timeout 120 memccapable -h 127.0.0.1 -p $PORT -t 5 > "$D/capable-$cycle-$what.txt" 2>&1
  cap=$?
  t1=$(now_cs)
  # Keep only failing outputs (the rest is 40 lines of "pass" per run).
  [ "$cap" = 0 ] && rm -f "$D/capable-$cycle-$what.txt"
  echo "{\"cycle\":$cycle,\"step\":\"conformance\",\"after\":\"$what\",\"request\":null,\"ctlExit\":null,\"capableExit\":$cap,\"memFreeBeforeKiB\":null,\"memFreeAfterKiB\":null,\"uptimeCs\":$t0,\"startCs\":$t0,\"endCs\":$t1}" >> "$D/cycles.jsonl"
}

# One fork() of the running server, timed inside it (the runtime's `fork` request), $2 times;
# one JSON line each into forks.jsonl, labelled $1 (before / after the cycles).
fork_probe() {
  i=0
  while [ $i -lt "$2" ]; do
    line=$(timeout 30 "$LIVE_CTL" "$MC" fork 2>>"$D/ctl.log" | grep '"event":"fork"')
    [ -n "$line" ] && echo "{\"when\":\"$1\",\"probe\":$line}" >> "$D/forks.jsonl"
    i=$((i + 1))
  done
}

CAPABLE_EVERY=${LIVE_CAPABLE_EVERY:-1}
# A bundle that cannot load (cut short) applied on top of the patch in place; records the
# runtime's status around it and wfpatch-ctl's exit (3: rejected).
bad_bundle() {
  head -c 2000 "$LIVE_BUNDLE" > /tmp/cut.wfp
  st0=$("$LIVE_CTL" "$MC" status 2>/dev/null | grep '"event":"status"')
  timeout 60 "$LIVE_CTL" "$MC" apply /tmp/cut.wfp > "$D/bad-bundle.out" 2>&1
  rc=$?
  st1=$("$LIVE_CTL" "$MC" status 2>/dev/null | grep '"event":"status"')
  echo "{\"cycle\":$1,\"ctlExit\":$rc,\"before\":${st0:-null},\"after\":${st1:-null}}" > "$D/bad-bundle.json"
}

FAULT_KILL= FAULT_TERM= FAULT_BAD=
case "${LIVE_FAULT:-}" in
  kill-client@*) FAULT_KILL=${LIVE_FAULT#kill-client@} ;;
  term-server@*) FAULT_TERM=${LIVE_FAULT#term-server@} ;;
  bad-bundle@*) FAULT_BAD=${LIVE_FAULT#bad-bundle@} ;;
esac

# memcached, run as root, needs -u root, and so a passwd entry (the initramfs has no /etc).
if ! grep -q '^root:' /etc/passwd 2>/dev/null; then
  mkdir -p /etc
  echo 'root:x:0:0:root:/root:/bin/sh' >> /etc/passwd
  echo 'root:x:0:' >> /etc/group
fi

for mode in $LIVE_MODES; do
  D=$R/$mode
  mkdir -p "$D"
  say "mode $mode: starting memcached"
  export WF_LOGFILE=$D/wfpatch.log
  # LIVE_PIN=exe: libwfpatch pins only the executable's code (WF_PIN), not the libraries'.
  if [ -n "${LIVE_PIN:-}" ]; then export WF_PIN=$LIVE_PIN; fi
  if [ "$mode" = global ]; then export WF_GLOBAL=1; else unset WF_GLOBAL; fi
  if [ -n "${LIVE_CNE_PROBE:-}" ]; then export LD_PRELOAD=$LIVE_CNE_PROBE CNE_PROBE_LOG=$D/cne.log; fi
  "$LIVE_MEMCACHED" -u root -U 0 -l 127.0.0.1 -p $PORT -t "$LIVE_THREADS" -m 64 -c 1024 > "$D/memcached.out" 2>&1 &
  MC=$!
  unset LD_PRELOAD CNE_PROBE_LOG
  # Ready when it answers `version`.
  n=0
  until printf 'version\r\nquit\r\n' | timeout 2 nc 127.0.0.1 $PORT 2>/dev/null | grep -q VERSION; do
    n=$((n + 1))
    if [ $n -gt 100 ] || ! alive $MC; then say "memcached did not come up"; cat "$D/memcached.out"; exit 20; fi
    sleep 0.1
  done
  unset WF_LOGFILE WF_GLOBAL WF_PIN
  WATCH=
  if [ -n "${LIVE_CNE_PROBE:-}" ]; then
    # The watcher stays connected through a fifo held open on fd 3.
    rm -f /tmp/watch.in && mkfifo /tmp/watch.in
    nc 127.0.0.1 $PORT < /tmp/watch.in > "$D/watch.txt" 2>&1 &
    WATCH=$!
    exec 3> /tmp/watch.in
    printf 'watch connevents\r\n' >&3
    sleep 0.5
    cne_probe 0 baseline
  fi
  timeout 120 memccapable -h 127.0.0.1 -p $PORT -t 5 > "$D/capable-baseline.txt" 2>&1
  echo "{\"cycle\":0,\"step\":\"baseline\",\"request\":null,\"ctlExit\":null,\"capableExit\":$?,\"memFreeBeforeKiB\":null,\"memFreeAfterKiB\":null,\"uptimeCs\":$(now_cs)}" > "$D/cycles.jsonl"

  # Load: 1 s of warm-up, the cycles (as long as they take: memccapable runs after every step),
  # 1 s after the last one; then the clients are stopped by signal (both stop by themselves
  # after a day, and the whole guest has a timeout).
  interval_cs=$(awk -v i="$LIVE_INTERVAL" 'BEGIN { printf "%d", i * 100 }')
  memcaslap -s 127.0.0.1:$PORT -T 1 -c "$LIVE_CONNS" -t 86400s -S 1s > "$D/memcaslap.txt" 2>&1 &
  SLAP=$!
  "$LIVE_MEMLOAD" 127.0.0.1 $PORT "$LIVE_CONNS" 86400 "$D/memload" 90 10000 64 "${LIVE_THINK_US:-0}" > "$D/memload.out" 2>&1 &
  LOAD=$!
  start=$(now_cs)
  sleep_until $((start + 100))
  echo "{\"memFreeKiB\":$(memfree),\"rssKiB\":$(rss $MC),\"maps\":$(maps $MC)}" > "$D/mem-before.json"
  fork_probe before 15

  next=$((start + 100))
  c=1
  while [ $c -le "$LIVE_CYCLES" ]; do
    if [ "$c" = "$FAULT_KILL" ]; then say "fault: killing the load clients before cycle $c"; kill -9 $LOAD $SLAP 2>/dev/null; fi
    if [ "$c" = "$FAULT_TERM" ]; then
      ( sleep 0.05; say "fault: SIGTERM to memcached during cycle $c's apply"; kill -TERM $MC ) &
    fi
    # The step, its quiet interval (the patch window lies in it), then memccapable.
    check=
    if [ $((c % CAPABLE_EVERY)) = 0 ] || [ "$c" = "$LIVE_CYCLES" ]; then check=1; fi
    step $c apply
    if [ "$c" = "$FAULT_BAD" ] && [ -n "$LIVE_BUNDLE" ]; then say "fault: a bundle cut short, applied during cycle $c"; bad_bundle $c; fi
    next=$((next + interval_cs)); sleep_until $next
    [ -n "$check" ] && { conformance $c apply; next=$(now_cs); }
    step $c rollback
    next=$((next + interval_cs)); sleep_until $next
    [ -n "$check" ] && { conformance $c rollback; next=$(now_cs); }
    alive $MC || { say "memcached is gone after cycle $c"; kill $SLAP 2>/dev/null; break; }
    # Progress on the console for long soaks (the results come back only at the end).
    [ $((c % 100)) = 0 ] && say "mode $mode: cycle $c of $LIVE_CYCLES done"
    c=$((c + 1))
  done
  sleep 1
  echo "{\"memFreeKiB\":$(memfree),\"rssKiB\":$(rss $MC),\"maps\":$(maps $MC)}" > "$D/mem-after.json"
  alive $MC && fork_probe after 15

  if [ -n "$WATCH" ]; then exec 3>&-; kill $WATCH 2>/dev/null; wait $WATCH 2>/dev/null; fi
  say "mode $mode: stopping the load clients"
  kill -INT $SLAP 2>/dev/null
  kill -TERM $LOAD 2>/dev/null
  wait $LOAD 2>/dev/null
  echo "{\"memload\":$?}" > "$D/clients.json"
  wait $SLAP 2>/dev/null
  echo "{\"memload\":$(cut -d: -f2 "$D/clients.json" | tr -d '}'),\"memcaslap\":$?}" > "$D/clients.json"
  kill -TERM $MC 2>/dev/null
  n=0
  while alive $MC && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  alive $MC && kill -9 $MC
  wait $MC 2>/dev/null
  [ -f "$D/memload.samples" ] && gzip -1 "$D/memload.samples"
  # memcaslap prints its statistics every second: keep its settings and the last block only
  # (everything in /results crosses a slow serial line).
  { head -n 8 "$D/memcaslap.txt"; tail -n 40 "$D/memcaslap.txt"; } > "$D/memcaslap.tmp" && mv "$D/memcaslap.tmp" "$D/memcaslap.txt"
  say "mode $mode: done"
done
exit 0
