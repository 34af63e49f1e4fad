#!/bin/sh
# W^X vs the old writable-code way, side by side in one boot: `bench one` (8 workers, local
# mode, bench-v2.o) alternately with WF_WX=0 and with the default, ROUNDS times each; one JSON
# line per run, prefixed by the way ("wx" or "rwx"). Usage: wx-bench.sh [ROUNDS]
# wfbuild vm run --file kpatch-fork/runtime/tests/build/bench --file .../bench-v2.o
#   --file .../libwftarget.so -- kpatch-fork/runtime/tests/wx-bench.sh 5
dir=$(dirname "$0")/build
rounds=${1:-5}
i=0
while [ "$i" -lt "$rounds" ]; do
	for way in rwx wx; do
		wx=1; [ "$way" = rwx ] && wx=0
		line=$(WF_WX=$wx WF_GLOBAL=0 WF_PATCH_QUEUE="$dir/bench-v2.o" WF_LOGFILE="/tmp/wxbench-$way-$i.jsonl" \
			"$dir/bench" one 8 1)
		echo "{\"way\":\"$way\",\"round\":$i,\"run\":$line}"
	done
	i=$((i + 1))
done
