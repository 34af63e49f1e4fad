#!/bin/sh
# W^X and syscall-filter scenarios inside the guest (test/runtime-wx.test.ts), one boot.
# Usage: wx-suite.sh GEN_WRITE WFSANDBOX ALLOW_LIST SPEC...
# GEN_WRITE (kernel/tests/gen_write.c, static) runs first. Each SPEC is
# NAME:BOX:ENV:MODE:SCENARIO[:ARG...]: BOX "unit" runs wftest under the seccomp filters of a
# unit with MemoryDenyWriteExecute=yes and SystemCallFilter=@system-service (WFSANDBOX with the
# allow-list ALLOW_LIST), "none" without; ENV is "-" or VAR=VALUE[,VAR=VALUE]; MODE local or
# global. Outputs: $WFVM_RESULTS/NAME.{out,err,jsonl,rc}. Always exits 0: the test decides.
dir=$(dirname "$0")/build
out=${WFVM_RESULTS:-/tmp/results}
mkdir -p "$out"
gen_write=$1 sandbox=$2 allow=$3
shift 3
echo "== gen_write"
"$gen_write" > "$out/gen_write.out" 2>&1
echo $? > "$out/gen_write.rc"
tail -c 300 "$out/gen_write.out"
for spec in "$@"; do
	name=${spec%%:*}; rest=${spec#*:}
	box=${rest%%:*}; rest=${rest#*:}
	envs=${rest%%:*}; rest=${rest#*:}
	mode=${rest%%:*}; rest=${rest#*:}
	set -- $(echo "$rest" | tr ':' ' ')
	scenario=$1; shift
	args=""
	for a in "$@"; do
		case $a in *.o) a="$dir/$a" ;; esac
		args="$args $a"
	done
	global=0; [ "$mode" = global ] && global=1
	prefix=""
	[ "$box" = unit ] && prefix="$sandbox --mdwe --syscalls $allow --"
	extra=""
	[ "$envs" != - ] && extra=$(echo "$envs" | tr ',' ' ')
	echo "== $name: $box $envs $mode $scenario$args"
	# shellcheck disable=SC2086
	env $extra WF_GLOBAL=$global WF_LOGFILE="$out/$name.jsonl" WF_PATCH_QUEUE="$dir/v2.o" \
		$prefix "$dir/wftest" $scenario $args > "$out/$name.out" 2> "$out/$name.err"
	echo $? > "$out/$name.rc"
	tail -c 400 "$out/$name.out"
done
exit 0
