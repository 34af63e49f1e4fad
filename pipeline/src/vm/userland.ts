/**
 * `wfbuild vm run --userland`: the guest gets a Debian userland — the host's root file system,
 * shared read-only over virtio-9p, under a tmpfs overlay — so a program in the guest can run
 * dpkg, install packages and start their services as on a real machine, and nothing it changes
 * reaches the host. The kernel side is in kernel/config/base.config (PCI, virtio-9p, overlayfs).
 */
import { shellQuote } from './init-script.ts';

/** The 9p mount tag of the host's root file system. */
export const hostRootTag = 'hostroot';

/** QEMU arguments: the host's / as a read-only virtio-9p export. */
export function userlandQemuArgs(): string[] {
  return [
    '-fsdev', `local,id=${hostRootTag},path=/,security_model=none,readonly=on,multidevs=remap`,
    '-device', `virtio-9p-pci,fsdev=${hostRootTag},mount_tag=${hostRootTag}`,
  ];
}

/**
 * Init-script lines (busybox sh, after /proc, /sys, /dev, /tmp are mounted in the initramfs):
 * the overlay root at /newroot with the virtual file systems, /tmp and /results moved or bound
 * into it, an empty /run, and a policy-rc.d that keeps dpkg from starting services (the test
 * starts what it runs). `tmpfsMiB` bounds what the guest may write.
 */
export function userlandSetup(tmpfsMiB: number): string {
  return `mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose ${hostRootTag} /lower || { echo "wfvm: cannot mount the host root over 9p"; reboot -f; }
mount -t tmpfs -o size=${tmpfsMiB}m,mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
# redirect_dir: dpkg renames directories that exist in the lower layer (EXDEV without it); it
# needs trusted xattrs on the upper (CONFIG_TMPFS_XATTR), so a kernel without falls back.
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work,redirect_dir=on /newroot 2>/dev/null ||
  mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || { echo "wfvm: cannot mount the overlay root"; reboot -f; }
for d in proc sys dev dev/pts dev/shm tmp; do mkdir -p /newroot/$d; mount --bind /$d /newroot/$d; done
mkdir -p /newroot/run /newroot${'/results'}
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mount --bind /results /newroot/results
printf '#!/bin/sh\\n# wfvm guest: services are started by the program under test\\nexit 101\\n' > /newroot/usr/sbin/policy-rc.d
chmod 755 /newroot/usr/sbin/policy-rc.d
echo wfguest > /newroot/etc/hostname`;
}

/** The program's command line, run inside the overlay root. */
export function userlandCommand(program: string, args: readonly string[]): string {
  const inner = ['cd /root 2>/dev/null || cd /; exec "$0" "$@"'].map(shellQuote).join(' ');
  return `chroot /newroot /bin/sh -c ${inner} ${[program, ...args].map(shellQuote).join(' ')}`;
}
