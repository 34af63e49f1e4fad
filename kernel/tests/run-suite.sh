#!/bin/sh
# Runs the generation tests in the guest, one after another; each test's
# output goes to $WFVM_RESULTS/<name>.out and its exit status to <name>.rc.
# Usage: run-suite.sh DIR "name args..." ...
dir=$1
shift
out=${WFVM_RESULTS:-/tmp}
mkdir -p "$out"
fails=0
for spec in "$@"; do
	name=${spec%% *}
	args=
	[ "$spec" != "$name" ] && args=${spec#* }
	echo "=== $name $args"
	start=$(date +%s)
	# shellcheck disable=SC2086
	"$dir/$name" $args > "$out/$name.out" 2>&1
	rc=$?
	end=$(date +%s)
	cat "$out/$name.out"
	echo "$rc" > "$out/$name.rc"
	echo "=== $name rc=$rc $((end - start))s"
	[ "$rc" = 0 ] || fails=$((fails + 1))
done
exit $fails
