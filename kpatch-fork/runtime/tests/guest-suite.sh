#!/bin/sh
# Runs wftest scenarios inside the guest (test/runtime-guest.test.ts), one after another in one
# boot. Each argument is NAME:MODE:SCENARIO[:ARG...] with MODE local or global; the scenario's
# stdout goes to $WFVM_RESULTS/NAME.out, the runtime's log to NAME.jsonl, its status to NAME.rc.
# Patch files are named relative to this script's folder. Always exits 0: the test decides.
dir=$(dirname "$0")/build
out=${WFVM_RESULTS:-/tmp/results}
mkdir -p "$out"
head -c 600 "$dir/v2.o" > /tmp/truncated.o
for spec in "$@"; do
	name=${spec%%:*}; rest=${spec#*:}
	mode=${rest%%:*}; rest=${rest#*:}
	set -- $(echo "$rest" | tr ':' ' ')
	scenario=$1; shift
	args=""
	for a in "$@"; do
		case $a in
		*.o) if [ -e "$dir/$a" ]; then a="$dir/$a"; else a="/tmp/$a"; fi ;;
		esac
		args="$args $a"
	done
	global=0; [ "$mode" = global ] && global=1
	echo "== $name: $mode $scenario$args"
	WF_GLOBAL=$global WF_LOGFILE="$out/$name.jsonl" WF_PATCH_QUEUE="$dir/v2.o" \
		"$dir/wftest" $scenario $args > "$out/$name.out" 2> "$out/$name.err"
	echo $? > "$out/$name.rc"
	tail -c 400 "$out/$name.out"
done
exit 0
