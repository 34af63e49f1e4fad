#!/bin/sh
# wfbuild compiler wrapper. Installed as gcc, cc, g++, c++, ar (and their target-prefixed names)
# and make in a shim folder put first in PATH, so it survives whatever CC/CFLAGS a build system or
# dpkg-buildflags chooses. It
#   - adds -ffunction-sections -fdata-sections: create-diff-object compares and extracts
#     functions and data objects one section each;
#   - maps the tree's path to "." (-ffile-prefix-map) so an unchanged file rebuilt in the
#     patched copy of the tree gives the same bytes as in the original tree;
#   - drops -flto* (LTO objects hold GIMPLE, not code to compare);
#   - records every successful invocation (directory, tool, final arguments) as one
#     NUL-separated record file in $WFBUILD_LOG; wfbuild turns them into the JSON-lines build log.
#     A call made under no recorded make is named o.* instead of r.*: then the build is not
#     only make, and the patched build cannot be a replay of the recorded make invocations;
#   - keeps a copy of every linked output (r.*.out) at the moment it is linked, so later steps
#     of the build (install rules moving or relinking files) cannot take it away;
#   - as make and ninja: records the outermost make/ninja invocations (m.*: directory and
#     arguments, m.*.env: the environment), so the patched build can re-run exactly these instead
#     of the whole build command (which re-runs configure). A make running debian/rules is the
#     build command's driver (dh and its overrides), not a build step: neither recorded nor
#     counted as "under a make";
#   - as a compiler under no recorded make: a make the shim never saw ($(MAKE) in debian/rules
#     is /usr/bin/make) may still be the build step. The outermost such make between the
#     compiler and the driver is read from /proc (directory, arguments, environment) and
#     recorded once (m.p<pid>-<start>), as the shim would have recorded it.
# Environment: WFBUILD_REAL_PATH (PATH without the shim folder), WFBUILD_LOG (record folder),
# WFBUILD_TREE (the tree's absolute path).
# Kept in POSIX sh: it runs for every compiler call (hundreds in a configure run), so it must start fast.

tool=${0##*/}
# Under a recorded make or not (the make branch below exports it for everything make runs).
kind=o
[ -n "$WFBUILD_IN_MAKE" ] && kind=r
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
		record=$(mktemp "$WFBUILD_LOG/$kind.XXXXXXXXXX") && printf '%s\0' "$PWD" "$tool" "$@" >"$record"
	fi
	exit "$status"
	;;
make | gmake | ninja)
	# The driver: its recipes are the build command's steps, each recorded on its own.
	case $tool in make | gmake) for arg; do case $arg in *debian/rules) exec "$real" "$@" ;; esac; done ;; esac
	# Only the outermost make: its sub-makes are re-run by it. Recorded before it runs (the
	# order of several outermost makes is their start order).
	if [ -z "$WFBUILD_IN_MAKE" ] && [ -n "$WFBUILD_LOG" ]; then
		record=$(mktemp "$WFBUILD_LOG/m.XXXXXXXXXX") && printf '%s\0' "$PWD" "$tool" "$@" >"$record" && env -0 >"$record.env"
	fi
	WFBUILD_IN_MAKE=1
	export WFBUILD_IN_MAKE
	exec "$real" "$@"
	;;
esac

# The outermost make above this process (pid on stdout, nothing if none) that is below the
# driver and belongs to this build (its environment has our WFBUILD_LOG).
outer_make() {
	p=$PPID
	found=
	while [ "$p" -gt 1 ]; do
		IFS= read -r stat <"/proc/$p/stat" || break
		comm=${stat#*(}
		comm=${comm%%)*}
		# shellcheck disable=SC2086 # split the fields after "(comm) "
		set -- ${stat##*) }
		case $comm in
		make | gmake)
			# What this make is (the driver, ours, another build's) is memoized per process
			# (pid and start time): a build's hundreds of compiler calls share a few makes, and
			# asking /proc costs two processes per question.
			memo="$WFBUILD_LOG/k.$p-${20}"
			if [ -e "$memo.ours" ]; then
				found=$p
			elif [ -e "$memo.stop" ]; then
				break
			elif tr '\0' '\n' <"/proc/$p/cmdline" | grep -q 'debian/rules$' ||
				! tr '\0' '\n' <"/proc/$p/environ" | grep -qxF "WFBUILD_LOG=$WFBUILD_LOG"; then
				: >"$memo.stop"
				break
			else
				: >"$memo.ours"
				found=$p
			fi
			;;
		esac
		p=$2
	done 2>/dev/null
	echo "$found"
}

# Records make process $1 as an outermost make (once: named by pid and start time). Its
# directory is where it started: its parent's, when it changed directory itself (-C).
record_make_of() {
	IFS= read -r stat <"/proc/$1/stat" || return 1
	# shellcheck disable=SC2086
	set -- "$1" ${stat##*) }
	name="$WFBUILD_LOG/m.p$1-${21}"
	make_outputs="$name.outputs"
	[ -e "$name" ] && return 0
	dir=$(readlink "/proc/$1/cwd") || return 1
	if tr '\0' '\n' <"/proc/$1/cmdline" | grep -q '^-C\|^--directory'; then
		dir=$(readlink "/proc/$3/cwd") || return 1
	fi
	tmp=$(mktemp "$WFBUILD_LOG/t.XXXXXXXXXX") || return 1
	{ printf '%s\0%s\0' "$dir" make && tail -z -n +2 "/proc/$1/cmdline"; } >"$tmp" &&
		cat "/proc/$1/environ" >"$tmp.env" &&
		mv -f "$tmp.env" "$name.env" && mv -f "$tmp" "$name"
}

make_outputs=
if [ "$kind" = o ] && [ -n "$WFBUILD_LOG" ]; then
	make_pid=$(outer_make)
	if [ -n "$make_pid" ]; then
		# Not in a $(...): it sets make_outputs.
		record_make_of "$make_pid" 2>/dev/null && kind=r
	fi
fi

# While filtering, note the output (-o) and whether the call links (no -c/-S/-E/-M).
out=
links=yes
compiles=
take_out=
n=$#
while [ "$n" -gt 0 ]; do
	arg=$1
	shift
	n=$((n - 1))
	if [ -n "$take_out" ]; then
		out=$arg
		take_out=
	fi
	case $arg in
	-flto | -flto=* | -ffat-lto-objects | -fno-fat-lto-objects | -fuse-linker-plugin) continue ;;
	-c | -S) links= compiles=yes ;;
	-E | -M | -MM) links= ;;
	-o) take_out=yes ;;
	-o*) out=${arg#-o} ;;
	esac
	set -- "$@" "$arg"
done
set -- "$@" -ffunction-sections -fdata-sections
if [ -n "$WFBUILD_TREE" ]; then
	set -- "$@" "-ffile-prefix-map=$WFBUILD_TREE=."
fi

"$real" "$@"
status=$?
if [ "$status" -eq 0 ] && [ -n "$WFBUILD_LOG" ]; then
	record=$(mktemp "$WFBUILD_LOG/$kind.XXXXXXXXXX") && printf '%s\0' "$PWD" "$tool" "$@" >"$record"
	# What a make found through /proc produced (an empty line: not known): a make whose
	# outputs are all gone after the build ran probes (postfix's `make makefiles`), no build step.
	# Queries (-print-search-dirs, -dumpversion) and -E/-M write no file: nothing to note.
	if [ -n "$make_outputs" ] && [ -n "$out$compiles" ]; then
		case $out in '' | /*) made=$out ;; *) made=$PWD/$out ;; esac
		printf '%s\n' "$made" >>"$make_outputs"
	fi
	# configure's conftest programs are never targets: not worth a copy each.
	case ${links:+$out} in
	'' | conftest* | */conftest*) ;;
	*) [ -f "$out" ] && cp -p -- "$out" "$record.out" ;;
	esac
fi
exit "$status"
