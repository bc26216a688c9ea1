/**
 * A really small disk for the disk-full tests: a tmpfs of a few MiB mounted on a fresh folder (the kernel answers
 * ENOSPC past its size, as a full disk does), that a test fills with a ballast file and empties again. Mounting needs
 * root and CAP_SYS_ADMIN; the test machines (and CI, which runs on machines like them) have both, so in CI a refused
 * mount fails the run; elsewhere the test is skipped, printing the mount's own error.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface SmallDisk {
  folder: string;
  /** Writes a ballast file until the disk refuses (ENOSPC); returns the bytes it took. */
  fill(): number;
  /** Removes the ballast. */
  empty(): void;
  /** Bytes free on the disk now. */
  freeBytes(): number;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `mib` MiB on a new folder, or on `at` (made if missing: a data folder's spool, say); or returns
 * undefined (outside CI) with the reason printed; throws in CI.
 */
export function mountSmallDisk(mib: number, at?: string): SmallDisk | undefined {
  const folder = at ?? mkdtempSync(path.join(tmpdir(), "ct-enhance-small-disk-"));
  mkdirSync(folder, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${mib}m,mode=0700`, "tmpfs", folder], { stdio: "pipe" });
  } catch (error) {
    rmSync(folder, { recursive: true, force: true });
    const said = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    const message = `cannot mount a ${mib} MiB tmpfs for the disk-full test (${said})`;
    if (process.env.CI) throw new Error(`${message}; CI machines run as root with mount permitted, so this is a fault of the machine`);
    console.warn(`skipping: ${message}`);
    return undefined;
  }
  const ballast = path.join(folder, "ballast");
  return {
    folder,
    fill() {
      const fd = openSync(ballast, "a");
      let written = 0;
      try {
        // Large blocks first, then a page at a time, so the disk ends with no whole page free.
        for (const size of [1 << 20, 4096, 512]) {
          const block = Buffer.alloc(size, 0x5a);
          for (;;) {
            try {
              written += writeSync(fd, block);
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw error;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return written;
    },
    empty() {
      rmSync(ballast, { force: true });
    },
    freeBytes() {
      const stats = statfsSync(folder);
      return stats.bavail * stats.bsize;
    },
    unmount() {
      execFileSync("umount", [folder], { stdio: "pipe" });
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/**
 * Whether this machine lets the tests mount a tmpfs: one is mounted and unmounted at once. False (outside CI) with the
 * reason printed; throws in CI. Lets a test file decide at collection and mount in its own setup, so a file whose
 * tests are filtered out leaves no mount behind.
 */
export function canMountSmallDisk(): boolean {
  const trial = mountSmallDisk(1);
  trial?.unmount();
  return trial !== undefined;
}
