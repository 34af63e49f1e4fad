#!/bin/sh
# Runs inside the guest (wfbuild demo): kvd under load from kvload, which triggers the patch
# at TRIGGER_MS; libwfpatch's log and kvload's counts go to the results folder.
# Environment: KVD, KVLOAD, BUNDLE, WORKERS, CLIENTS, SECONDS, TRIGGER_MS (WF_GLOBAL passes through).
out=${WFVM_RESULTS:-/tmp/results}
mkdir -p "$out"
WF_LOGFILE="$out/wfpatch.jsonl" WF_PATCH_QUEUE="$BUNDLE" "$KVD" "$WORKERS" 7070 > "$out/kvd.out" 2>&1 &
kvd=$!
# kvd is up once it accepts a connection.
i=0
while ! echo "GET warmup" | nc 127.0.0.1 7070 > /dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "kvd did not start"; cat "$out/kvd.out"; exit 1; }
	sleep 0.1
done
"$KVLOAD" 7070 "$CLIENTS" "$SECONDS" "$kvd" "$TRIGGER_MS" > "$out/load.json" 2> "$out/load.err"
status=$?
kill -0 "$kvd" 2> /dev/null || { echo "kvd died during the run"; status=1; }
kill "$kvd"
exit $status
