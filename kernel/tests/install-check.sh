#!/bin/sh
# The install test's boot check (test/kernel-install.test.ts): run once at the end of every
# boot of the Debian 12 machine by a systemd oneshot unit, output on the serial console as
# "WFCHECK key=value" lines, then power off. The phase (a file on the machine's disk) says
# which boot this is:
#   install  Debian's kernel: dpkg -i the wfpatch linux-image package (Debian's hooks make the
#            initrd and the GRUB entry), list /boot and GRUB's menu entries.
#   run      the default GRUB entry, which must now be the wfpatch kernel: run the generation
#            programs listed in $dir/programs, then dpkg -r the package (going back).
#   back     GRUB's default is Debian's kernel again: report the package's state.
set -u
dir=/var/lib/wfpatch-install
phase=$(cat "$dir/phase" 2>/dev/null || echo install)
say() { echo "WFCHECK $*"; }

say "phase=$phase"
say "uname=$(uname -r)"
say "root=$(findmnt -n -o SOURCE /)"
say "cmdline=$(cat /proc/cmdline)"
systemctl list-units --failed --plain --no-legend | while read -r unit _; do say "failed-unit=$unit"; done

case "$phase" in
install)
	for deb in "$dir"/linux-image-*.deb; do
		dpkg -i "$deb"
		say "dpkg-install=$? $(basename "$deb")"
	done
	for f in /boot/*; do say "boot-file=$(basename "$f")"; done
	grep -o "menuentry '[^']*'" /boot/grub/grub.cfg | sed "s/^menuentry '\(.*\)'/WFCHECK grub-entry=\1/"
	next=run
	;;
run)
	while read -r name args; do
		[ -n "$name" ] || continue
		# shellcheck disable=SC2086 # args are words by design
		"$dir/$name" $args
		say "program=$name rc=$?"
	done < "$dir/programs"
	pkg="linux-image-$(uname -r)"
	dpkg -r "$pkg"
	say "dpkg-remove=$? $pkg"
	for f in /boot/*; do say "boot-file=$(basename "$f")"; done
	next=back
	;;
back)
	for pkg in $(cat "$dir/package"); do
		say "package=$pkg status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | tr -d ' ' || echo none)"
	done
	next=done
	;;
*)
	next=done
	;;
esac
echo "$next" > "$dir/phase"
sync
say "done=$phase"
systemctl --no-block poweroff
