/** Markers on the control serial port (ttyS1); chosen so program output cannot forge them there. */
export const controlMarkers = {
  ready: '@@WFVM-READY',
  exit: '@@WFVM-EXIT',
  resultsBegin: '@@WFVM-RESULTS-BEGIN',
  resultsEnd: '@@WFVM-RESULTS-END',
} as const;

/** Where the program writes files that come back to the host (--out). */
export const guestResultsDir = '/results';

/** Quotes a word for sh: single quotes, with embedded single quotes spliced in. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface InitScriptOptions {
  program: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  /** --userland: lines that prepare the overlay root, and the command that runs the program in it. */
  userland?: { readonly setup: string; readonly command: string };
}

/**
 * The guest's /init (busybox sh, PID 1): a sane environment, the program, its exit status
 * and the results folder over ttyS1, then reboot -f (QEMU runs with -no-reboot, so the VM
 * ends). Everything user-supplied is single-quoted.
 */
export function initScript({ program, args, env, userland }: InitScriptOptions): string {
  const exports = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  const command = userland?.command ?? [program, ...args].map(shellQuote).join(' ');
  return `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
[ -d /.wfvm-tmp ] && cp -a /.wfvm-tmp/. /tmp/
ip link set lo up
hostname wfguest
mkdir -p ${guestResultsDir}
${userland?.setup ?? ''}
ctl=/dev/ttyS1
stty -F $ctl raw -echo 2>/dev/null
echo ${controlMarkers.ready} > $ctl
export HOME=/root TERM=dumb WFVM_RESULTS=${guestResultsDir}
${exports.join('\n')}
cd /root
${command} </dev/null
rc=$?
echo "${controlMarkers.exit} $rc" > $ctl
{
  echo ${controlMarkers.resultsBegin}
  tar -c -C ${guestResultsDir} . | base64
  echo ${controlMarkers.resultsEnd}
} > $ctl
sync
reboot -f
`;
}
