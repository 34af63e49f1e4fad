#!/bin/sh
# The guest side of `wfbuild live slapd` (busybox sh, run by the VM harness's /init).
# Unpacks the enabled slapd (binary, its own libldap/liblber/libslapi, back-mdb, core.schema)
# into /opt/wfslapd, loads a directory of $LIVE_USERS entries with slapadd (slapd -Ta), then for
# each mode in $LIVE_MODES (local, global) from this one boot: starts slapd (WF_LOGFILE into
# /results/MODE, WF_GLOBAL=1 for global), OpenLDAP's slapd-mtread (the load) and ldapload (our
# client, which records and checks every search), and every $LIVE_INTERVAL seconds triggers a
# transition through wfpatch-ctl: cycle c applies bundle number (c-1) mod n of $LIVE_BUNDLES and
# then rolls it back (no bundles: `next` for both steps). After each step's quiet interval,
# `ldapload dump` searches the whole directory on a new connection and compares it with the
# dump taken before the first cycle (conformance: same entries before, during, after).
# libslapi's slapi_over_config runs once per process, when the first SLAPI plugin is configured:
# after the first apply of the libslapi bundle, the conformance step also adds our plugin
# through cn=config (ldapmodify); its init writes a line to SLAPI's error log, whose path that
# function chose: /var/log/slapi-errors in the new version, /var/errors in the old. A control
# slapd (same files, no patch) does the same once before the modes. Results in MODE/slapi.json
# and slapi-control.json.
#
# Environment: LIVE_MODES, LIVE_CYCLES, LIVE_INTERVAL, LIVE_CONNS, LIVE_THREADS (slapd `threads`),
# LIVE_THINK_US, LIVE_USERS, LIVE_BUNDLES (guest paths, space-separated, may be empty),
# LIVE_TARBALL, LIVE_PROBE (slapd-hname-probe.so), LIVE_LDAPLOAD, LIVE_MTREAD, LIVE_CTL, LIVE_MTREAD_THREADS, LIVE_FAULT
# (`kill-client@N`, `term-server@N` as in guest.sh).
set -u
R=${WFVM_RESULTS:-/results}
PORT=${LIVE_PORT:-3890}
BASE="dc=wf,dc=example"
O=/opt/wfslapd
say() { echo "live: $*"; }
now_cs() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}"; }
memfree() { awk '/^MemFree:/ { print $2 }' /proc/meminfo; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo null; }
sleep_until() {
  rem=$(( $1 - $(now_cs) ))
  [ "$rem" -gt 0 ] && sleep "$(( rem / 100 )).$(printf %02d $(( rem % 100 )))"
  return 0
}
alive() { kill -0 "$1" 2>/dev/null; }
slapd_run() { LD_LIBRARY_PATH=$O/lib "$O/slapd" "$@"; }

# The bundle cycle $1 applies: number ($1-1) mod n of $LIVE_BUNDLES.
bundle_of() {
  # shellcheck disable=SC2086
  set -- "$1" $LIVE_BUNDLES
  k=$(( ($1 - 1) % ($# - 1) ))
  shift $(( k + 1 ))
  echo "$1"
}

# Configures our SLAPI plugin on the mdb database through cn=config (slapd on port $1) and
# prints the SLAPI error log its init wrote to: which slapi_over_config ran.
slapi_logfile() {
  rm -f /var/errors /var/log/slapi-errors
  printf 'dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nadd: olcPlugin\nolcPlugin: object %s wf_slapi_init\n' "$O/modules/wf-slapi-plugin.so" |
    LD_LIBRARY_PATH=$O/lib timeout 60 "$O/bin/ldapmodify" -x -H "ldap://127.0.0.1:$1/" -D cn=config -w secret > /dev/null 2>> "$R/slapi-errors.txt" || { echo modify-failed; return; }
  for f in /var/errors /var/log/slapi-errors; do grep -q wf-slapi-plugin "$f" 2>/dev/null && { echo "$f"; return; }; done
  echo none
}

# slapd.conf: $1 file, $2 database directory, $3 pid file. cn=config (rootdn cn=config) is
# there to add the SLAPI plugin at run time; changes to it are not saved (slapd.conf).
write_conf() {
  cat > "$1" <<EOF
include $O/schema/core.schema
pidfile $3
modulepath $O/modules
moduleload back_mdb.so
threads $LIVE_THREADS
reverse-lookup on
sizelimit unlimited
database config
rootpw secret
database mdb
maxsize 268435456
suffix "$BASE"
rootdn "cn=admin,$BASE"
rootpw secret
directory $2
index objectClass eq
EOF
}

# One transition; appends a JSON line to cycles.jsonl. $1 cycle, $2 step (apply|rollback).
step() {
  cycle=$1 what=$2
  if [ -n "$LIVE_BUNDLES" ]; then
    if [ "$what" = apply ]; then req="apply $(bundle_of "$cycle")"; else req=rollback; fi
  else
    req=next
  fi
  before=$(memfree)
  t0=$(now_cs)
  # shellcheck disable=SC2086
  timeout 60 "$LIVE_CTL" "$SD" $req >> "$D/ctl.log" 2>&1
  ctl=$?
  after=$(memfree)
  echo "{\"cycle\":$cycle,\"step\":\"$what\",\"request\":\"$req\",\"ctlExit\":$ctl,\"capableExit\":null,\"memFreeBeforeKiB\":$before,\"memFreeAfterKiB\":$after,\"uptimeCs\":$t0}" >> "$D/cycles.jsonl"
}

# The whole directory, searched on a new connection, against the first dump: exit 0 when equal.
# That connection's reverse lookup runs ldap_pvt_get_hname: the probe's line for it says which
# version ran ("held": the mutex the unit removes is taken, old code; "free": new code).
hname_lines() { wc -l < "$D/hname.log" 2>/dev/null || echo 0; }
conformance() {
  cycle=$1 what=$2
  t0=$(now_cs)
  h0=$(hname_lines)
  timeout 60 "$LIVE_LDAPLOAD" dump 127.0.0.1 $PORT "$BASE" > "$D/dump-$cycle-$what.txt" 2>&1 && cmp -s "$D/dump-baseline.txt" "$D/dump-$cycle-$what.txt"
  cap=$?
  hn=none
  [ "$(hname_lines)" -gt "$h0" ] && hn=$(tail -n 1 "$D/hname.log")
  # Inside the step's conformance window: a cn=config change pauses slapd's thread pool.
  if [ "$what" = apply ] && [ -z "$SLAPI_DONE" ] && [ -n "$LIVE_BUNDLES" ]; then
    case "$(bundle_of "$cycle")" in
      *libslapi*)
        SLAPI_DONE=1
        echo "{\"cycle\":$cycle,\"after\":\"apply\",\"slapiErrorLog\":\"$(slapi_logfile $PORT)\"}" > "$D/slapi.json"
        say "mode $mode: after cycle $cycle's apply $(cat "$D/slapi.json")" ;;
    esac
  fi
  t1=$(now_cs)
  [ "$cap" = 0 ] && rm -f "$D/dump-$cycle-$what.txt"
  echo "{\"cycle\":$cycle,\"step\":\"conformance\",\"after\":\"$what\",\"request\":null,\"ctlExit\":null,\"capableExit\":$cap,\"memFreeBeforeKiB\":null,\"memFreeAfterKiB\":null,\"uptimeCs\":$t0,\"startCs\":$t0,\"endCs\":$t1,\"hname\":\"$hn\"}" >> "$D/cycles.jsonl"
}

FAULT_KILL= FAULT_TERM=
case "${LIVE_FAULT:-}" in
  kill-client@*) FAULT_KILL=${LIVE_FAULT#kill-client@} ;;
  term-server@*) FAULT_TERM=${LIVE_FAULT#term-server@} ;;
esac

say "guest up; unpacking slapd into $O"
mkdir -p $O /etc /var/log
tar -xf "$LIVE_TARBALL" -C $O || { say "cannot unpack $LIVE_TARBALL"; exit 20; }
grep -q '^root:' /etc/passwd 2>/dev/null || { echo 'root:x:0:0:root:/root:/bin/sh' >> /etc/passwd; echo 'root:x:0:' >> /etc/group; }
# getnameinfo for the reverse lookup of every new connection (reverse-lookup on) finds the name here.
grep -q localhost /etc/hosts 2>/dev/null || echo '127.0.0.1 localhost' >> /etc/hosts

# The directory: the suffix, ou=people and $LIVE_USERS person entries, loaded by slapadd.
ldif=/tmp/wf.ldif
{
  printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: wf\no: wfpatch\n\n' "$BASE"
  printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$BASE"
  awk -v n="$LIVE_USERS" -v base="$BASE" 'BEGIN { for (i = 0; i < n; i++) printf "dn: cn=user%d,ou=people,%s\nobjectClass: person\ncn: user%d\nsn: Number %d\ndescription: entry %d of the wfpatch live directory\ntelephoneNumber: +1 555 %07d\n\n", i, base, i, i, i, i }'
} > $ldif

conf=/tmp/slapd.conf
write_conf $conf /tmp/slapd-db /tmp/slapd.pid
mkdir -p /tmp/slapd-db
t0=$(now_cs)
say "slapadd of $LIVE_USERS entries"
# A bound: once (10-cycle run, 2026-11-30) the guest sat idle after unpacking, before slapadd
# reported; this turns such a hang into a clear failure with slapadd's output.
LD_LIBRARY_PATH=$O/lib timeout 900 "$O/slapd" -Ta -q -f $conf -b "$BASE" -l $ldif > "$R/slapadd.txt" 2>&1 || { say "slapadd failed or hung (exit $?)"; cat "$R/slapadd.txt"; exit 20; }
say "slapadd: $LIVE_USERS entries in $(( $(now_cs) - t0 ))0 ms"

# The control: an unpatched slapd from the same files configures the plugin the same way.
if [ -n "$LIVE_BUNDLES" ]; then
  mkdir -p /tmp/slapd-ctl-db
  write_conf /tmp/slapd-ctl.conf /tmp/slapd-ctl-db /tmp/slapd-ctl.pid
  CPORT=$((PORT + 1))
  slapd_run -d 0 -f /tmp/slapd-ctl.conf -h "ldap://127.0.0.1:$CPORT/" > "$R/slapd-control.out" 2>&1 &
  CSD=$!
  n=0
  until LD_LIBRARY_PATH=$O/lib "$O/bin/ldapsearch" -x -H "ldap://127.0.0.1:$CPORT/" -D cn=config -w secret -b cn=config -s base dn > /dev/null 2>&1; do
    n=$((n + 1)); [ $n -gt 150 ] && break; sleep 0.2
  done
  echo "{\"slapiErrorLog\":\"$(slapi_logfile $CPORT)\"}" > "$R/slapi-control.json"
  say "control slapd (no patch): $(cat "$R/slapi-control.json")"
  kill -TERM $CSD 2>/dev/null
  n=0
  while alive $CSD && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  alive $CSD && kill -9 $CSD
  wait $CSD 2>/dev/null
fi

for mode in $LIVE_MODES; do
  D=$R/$mode
  SLAPI_DONE=
  mkdir -p "$D"
  say "mode $mode: starting slapd"
  export WF_LOGFILE=$D/wfpatch.log
  if [ "$mode" = global ]; then export WF_GLOBAL=1; else unset WF_GLOBAL; fi
  # Not through slapd_run: $! must be slapd itself (wfpatch-ctl talks to that pid).
  WF_HNAME_LOG=$D/hname.log LD_PRELOAD=$LIVE_PROBE LD_LIBRARY_PATH=$O/lib "$O/slapd" -d 0 -f $conf -h "ldap://127.0.0.1:$PORT/" > "$D/slapd.out" 2>&1 &
  SD=$!
  n=0
  until "$LIVE_LDAPLOAD" dump 127.0.0.1 $PORT "$BASE" > "$D/dump-baseline.txt" 2>/dev/null; do
    n=$((n + 1))
    if [ $n -gt 150 ] || ! alive $SD; then say "slapd did not come up"; cat "$D/slapd.out"; exit 20; fi
    sleep 0.2
  done
  unset WF_LOGFILE WF_GLOBAL
  say "mode $mode: slapd $SD serves $(cat "$D/dump-baseline.txt")"
  echo "{\"cycle\":0,\"step\":\"baseline\",\"request\":null,\"ctlExit\":null,\"capableExit\":0,\"memFreeBeforeKiB\":null,\"memFreeAfterKiB\":null,\"uptimeCs\":$(now_cs)}" > "$D/cycles.jsonl"

  interval_cs=$(awk -v i="$LIVE_INTERVAL" 'BEGIN { printf "%d", i * 100 }')
  "$LIVE_MTREAD" -H "ldap://127.0.0.1:$PORT/" -e "cn=user1,ou=people,$BASE" -c "$LIVE_MTREAD_THREADS" -m "$LIVE_MTREAD_THREADS" -L 1 -l 100000000 > "$D/mtread.txt" 2>&1 &
  MT=$!
  "$LIVE_LDAPLOAD" 127.0.0.1 $PORT "$LIVE_CONNS" 86400 "$D/memload" "$BASE" "$LIVE_USERS" "${LIVE_THINK_US:-0}" > "$D/memload.out" 2>&1 &
  LOAD=$!
  start=$(now_cs)
  sleep_until $((start + 100))
  echo "{\"memFreeKiB\":$(memfree),\"rssKiB\":$(rss $SD)}" > "$D/mem-before.json"

  next=$((start + 100))
  c=1
  while [ $c -le "$LIVE_CYCLES" ]; do
    if [ "$c" = "$FAULT_KILL" ]; then say "fault: killing the load clients before cycle $c"; kill -9 $LOAD $MT 2>/dev/null; fi
    if [ "$c" = "$FAULT_TERM" ]; then
      ( sleep 0.05; say "fault: SIGTERM to slapd during cycle $c's apply"; kill -TERM $SD ) &
    fi
    step $c apply
    next=$((next + interval_cs)); sleep_until $next
    conformance $c apply
    next=$(now_cs)
    step $c rollback
    next=$((next + interval_cs)); sleep_until $next
    conformance $c rollback
    next=$(now_cs)
    alive $SD || { say "slapd is gone after cycle $c"; kill $MT 2>/dev/null; break; }
    c=$((c + 1))
  done
  sleep 1
  echo "{\"memFreeKiB\":$(memfree),\"rssKiB\":$(rss $SD)}" > "$D/mem-after.json"

  say "mode $mode: stopping the load clients"
  kill -TERM $LOAD 2>/dev/null
  wait $LOAD 2>/dev/null
  echo "{\"memload\":$?}" > "$D/clients.json"
  kill -TERM $MT 2>/dev/null
  wait $MT 2>/dev/null
  echo "{\"memload\":$(cut -d: -f2 "$D/clients.json" | tr -d '}'),\"mtread\":$?}" > "$D/clients.json"
  # The tracked threads and their names, for "every thread switched".
  ls /proc/$SD/task > "$D/tasks.txt" 2>/dev/null
  kill -TERM $SD 2>/dev/null
  n=0
  while alive $SD && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  alive $SD && kill -9 $SD
  wait $SD 2>/dev/null
  [ -f "$D/memload.samples" ] && gzip -1 "$D/memload.samples"
  tail -n 20 "$D/mtread.txt" > "$D/mtread.tmp" && mv "$D/mtread.tmp" "$D/mtread.txt"
  tail -n 50 "$D/slapd.out" > "$D/slapd.tmp" && mv "$D/slapd.tmp" "$D/slapd.out"
  say "mode $mode: done"
done
exit 0
