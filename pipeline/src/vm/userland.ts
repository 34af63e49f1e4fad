/**
 * `wfbuild vm run --userland[=rootfs|host]`: the guest runs the program in a Debian userland, so
 * it can run dpkg, install packages and start their services as on a real machine.
 *
 * - rootfs (the default): a small real Debian machine. A per-run copy of a debootstrap'd root
 *   (rootfs.ts) is the guest's root, read-write over virtio-9p: dpkg works on a real file system
 *   with a database of a few hundred packages, and nothing it changes reaches the cached root.
 *   Host folders the program needs (a repository, a scratch folder) are extra read-only 9p exports
 *   mounted at their host paths; single files are copied into the root copy at their paths.
 * - host: the host's own / read-only over virtio-9p under a tmpfs overlay. Everything the host
 *   has is there, but dpkg reads the host's whole package database over 9p (minutes per
 *   `dpkg -i` under TCG) and renaming a lower-layer folder needs redirect_dir.
 *
 * The kernel side is in kernel/config/base.config (PCI, virtio-9p, overlayfs, tmpfs xattrs).
 */
import { shellQuote } from './init-script.ts';

export type Userland =
  | { readonly kind: 'host' }
  | {
      readonly kind: 'rootfs';
      /** The root folder the guest boots into (a copy made for this run: the guest writes it). */
      readonly root: string;
      /** Host folders exported read-only and mounted at the same path in the guest. */
      readonly shares?: readonly string[];
    };

/** The 9p mount tag of the root export. */
export const hostRootTag = 'hostroot';

const shareTag = (i: number): string => `wfshare${i}`;

function export9p(tag: string, path: string, readonly: boolean): string[] {
  // fsdev's option list is comma-separated: a comma in a path is doubled.
  const p = path.replace(/,/g, ',,');
  return [
    '-fsdev', `local,id=${tag},path=${p},security_model=none${readonly ? ',readonly=on' : ''},multidevs=remap`,
    '-device', `virtio-9p-pci,fsdev=${tag},mount_tag=${tag}`,
  ];
}

/** QEMU arguments: the root export and the shares. */
export function userlandQemuArgs(u: Userland): string[] {
  if (u.kind === 'host') return export9p(hostRootTag, '/', true);
  return [...export9p(hostRootTag, u.root, false), ...(u.shares ?? []).flatMap((s, i) => export9p(shareTag(i), s, true))];
}

const mount9p = (tag: string, at: string, opts: string): string =>
  `mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,${opts} ${tag} ${shellQuote(at)}`;

/**
 * Init-script lines (busybox sh, after /proc, /sys, /dev, /tmp are mounted in the initramfs):
 * the root at /newroot with the virtual file systems, /tmp and /results bound into it, an empty
 * /run, and a policy-rc.d that keeps dpkg from starting services (the test starts what it runs).
 * `tmpfsMiB` bounds what a host-mode guest may write.
 */
export function userlandSetup(u: Userland, tmpfsMiB: number): string {
  const root = u.kind === 'host'
    ? `mkdir -p /lower /rw /newroot
${mount9p(hostRootTag, '/lower', 'ro,cache=loose')} || { echo "wfvm: cannot mount the host root over 9p"; reboot -f; }
mount -t tmpfs -o size=${tmpfsMiB}m,mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
# redirect_dir: dpkg renames directories that exist in the lower layer (EXDEV without it); it
# needs trusted xattrs on the upper (CONFIG_TMPFS_XATTR), so a kernel without falls back.
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,redirect_dir=on /newroot 2>/dev/null ||
  mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || { echo "wfvm: cannot mount the overlay root"; reboot -f; }`
    // cache=loose: only the guest writes this export while it runs, and executables need mmap.
    : [`mkdir -p /newroot`,
      `${mount9p(hostRootTag, '/newroot', 'rw,cache=loose')} || { echo "wfvm: cannot mount the root over 9p"; reboot -f; }`,
      ...(u.shares ?? []).map((s, i) => `mkdir -p ${shellQuote(`/newroot${s}`)} && ${mount9p(shareTag(i), `/newroot${s}`, 'ro,cache=loose')} || { echo ${shellQuote(`wfvm: cannot mount the share ${s}`)}; reboot -f; }`),
    ].join('\n');
  return `${root}
for d in proc sys dev dev/pts dev/shm tmp; do mkdir -p /newroot/$d; mount --bind /$d /newroot/$d; done
mkdir -p /newroot/run /newroot${'/results'}
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mount --bind /results /newroot/results
printf '#!/bin/sh\\n# wfvm guest: services are started by the program under test\\nexit 101\\n' > /newroot/usr/sbin/policy-rc.d
chmod 755 /newroot/usr/sbin/policy-rc.d
echo wfguest > /newroot/etc/hostname`;
}

/** The program's command line, run inside the new root. */
export function userlandCommand(program: string, args: readonly string[]): string {
  const inner = ['cd /root 2>/dev/null || cd /; exec "$0" "$@"'].map(shellQuote).join(' ');
  return `chroot /newroot /bin/sh -c ${inner} ${[program, ...args].map(shellQuote).join(' ')}`;
}
