#!/bin/sh
# wfbuild compiler wrapper. Installed as gcc, cc, g++, c++, ar (and their target-prefixed names)
# in a shim folder put first in PATH, so it survives whatever CC/CFLAGS a build system or
# dpkg-buildflags chooses. It
#   - adds -ffunction-sections -fdata-sections: create-diff-object compares and extracts
#     functions and data objects one section each;
#   - maps the tree's path to "." (-ffile-prefix-map) so an unchanged file rebuilt in the
#     patched copy of the tree gives the same bytes as in the original tree;
#   - drops -flto* (LTO objects hold GIMPLE, not code to compare);
#   - records every successful invocation (directory, tool, final arguments) as one
#     NUL-separated record file in $WFBUILD_LOG; wfbuild turns them into the JSON-lines build log.
# Environment: WFBUILD_REAL_PATH (PATH without the shim folder), WFBUILD_LOG (record folder),
# WFBUILD_TREE (the tree's absolute path).
# Kept in POSIX sh: it runs for every compiler call (hundreds in a configure run), so it must start fast.

tool=${0##*/}
real=$(PATH=$WFBUILD_REAL_PATH command -v "$tool") || {
	echo "wfbuild cc-wrapper: no real '$tool' in PATH" >&2
	exit 127
}

# As ar (static archives, libtool's convenience libraries) it only records: the link map
# follows objects through archives into the binaries.
case $tool in
*ar)
	"$real" "$@"
	status=$?
	if [ "$status" -eq 0 ] && [ -n "$WFBUILD_LOG" ]; then
		record=$(mktemp "$WFBUILD_LOG/r.XXXXXXXXXX") && printf '%s\0' "$PWD" "$tool" "$@" >"$record"
	fi
	exit "$status"
	;;
esac

n=$#
while [ "$n" -gt 0 ]; do
	arg=$1
	shift
	n=$((n - 1))
	case $arg in
	-flto | -flto=* | -ffat-lto-objects | -fno-fat-lto-objects | -fuse-linker-plugin) ;;
	*) set -- "$@" "$arg" ;;
	esac
done
set -- "$@" -ffunction-sections -fdata-sections
if [ -n "$WFBUILD_TREE" ]; then
	set -- "$@" "-ffile-prefix-map=$WFBUILD_TREE=."
fi

"$real" "$@"
status=$?
if [ "$status" -eq 0 ] && [ -n "$WFBUILD_LOG" ]; then
	record=$(mktemp "$WFBUILD_LOG/r.XXXXXXXXXX") && printf '%s\0' "$PWD" "$tool" "$@" >"$record"
fi
exit "$status"
