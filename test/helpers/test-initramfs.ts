/**
 * A Debian kernel and a tiny busybox initramfs that stand in for Talos in the
 * real-firmware tests. The initramfs's /init brings the NIC up with DHCP,
 * reads `talos.config=` from /proc/cmdline, fetches it, prints marker lines on
 * the serial console (ttyS0) and powers off:
 *
 *   TNB-BOOTED tag=<tag>          the initramfs of profile <tag> runs
 *   TNB-CMDLINE <kernel command line>
 *   TNB-ADDRESS <IPv4 from the site DHCP server>
 *   TNB-CONFIG <base64 of the fetched config>
 *   TNB-ERROR <what failed>
 *   TNB-POWEROFF
 *
 * The kernel comes from Debian's `linux-image-amd64` (its current dependency,
 * e.g. linux-image-6.1.0-57-amd64), fetched with `apt-get download` and
 * unpacked with `dpkg -x` into test/.cache — never installed on the host.
 * Only the kernel image and the NIC modules (with their dependencies, read
 * from each module's own `depends=`) are kept.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { repoRoot } from "./reference.js";

const run = promisify(execFile);

/** Modules that give the guest a virtio-net NIC; their dependencies are added. */
export const NIC_MODULES = ["virtio_pci", "virtio_net"] as const;

export interface DebianKernel {
  /** Debian package, e.g. `linux-image-6.1.0-57-amd64`, and its version. */
  package: string;
  version: string;
  vmlinuz: string;
  /** Module files to insmod, in load order (dependencies first); empty when the drivers are built in. */
  modules: string[];
}

export function cacheDir(): string {
  return join(repoRoot(), "test", ".cache");
}

/** `linux-image-amd64` → the versioned kernel package it depends on, and that package's candidate version. */
async function resolveKernelPackage(): Promise<{ pkg: string; version: string }> {
  const meta = await run("apt-cache", ["show", "--no-all-versions", "linux-image-amd64"], { timeout: 60_000 });
  const depends = /^Depends:\s*(.+)$/m.exec(meta.stdout)?.[1] ?? "";
  const pkg = /\b(linux-image-[0-9][^\s,(]*)/.exec(depends)?.[1];
  if (!pkg) throw new Error(`apt-cache show linux-image-amd64: no linux-image-<version> dependency in "${depends}" (run apt-get update)`);
  const info = await run("apt-cache", ["show", "--no-all-versions", pkg], { timeout: 60_000 });
  const version = /^Version:\s*(\S+)$/m.exec(info.stdout)?.[1];
  if (!version) throw new Error(`apt-cache show ${pkg}: no Version field`);
  return { pkg, version };
}

/**
 * The kernel, downloaded and unpacked once per package version (about 70 MB
 * to download, 8 MB kept). Concurrent callers are not expected: the netboot
 * suite runs one file at a time.
 */
export async function debianKernel(): Promise<DebianKernel> {
  const { pkg, version } = await resolveKernelPackage();
  const dir = join(cacheDir(), "debian-kernel", `${pkg}_${version.replace(/[^A-Za-z0-9.+~-]/g, "_")}`);
  const manifest = join(dir, "manifest.json");
  if (!existsSync(manifest)) await unpackKernel(pkg, dir);
  const m = JSON.parse(readFileSync(manifest, "utf8")) as { vmlinuz: string; modules: string[] };
  return { package: pkg, version, vmlinuz: join(dir, m.vmlinuz), modules: m.modules.map((f) => join(dir, f)) };
}

async function unpackKernel(pkg: string, dir: string): Promise<void> {
  mkdirSync(join(cacheDir(), "debian-kernel"), { recursive: true });
  const staging = mkdtempSync(join(cacheDir(), "debian-kernel", ".staging-"));
  try {
    // apt-get download writes into the working directory.
    await run("apt-get", ["download", pkg], { cwd: staging, timeout: 600_000 });
    const deb = readdirSync(staging).find((f) => f.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${staging}`);
    const tree = join(staging, "tree");
    await run("dpkg", ["-x", join(staging, deb), tree], { timeout: 300_000 });

    const out = join(staging, "out");
    mkdirSync(join(out, "modules"), { recursive: true });
    const vmlinuz = readdirSync(join(tree, "boot")).find((f) => f.startsWith("vmlinuz-"));
    if (!vmlinuz) throw new Error(`${pkg} has no /boot/vmlinuz-*`);
    copyFileSync(join(tree, "boot", vmlinuz), join(out, "vmlinuz"));
    const release = vmlinuz.slice("vmlinuz-".length);
    const modules = moduleClosure(join(tree, "lib", "modules", release), NIC_MODULES).map((src) => {
      const name = `modules/${src.slice(src.lastIndexOf("/") + 1)}`;
      copyFileSync(src, join(out, name));
      return name;
    });
    writeFileSync(join(out, "manifest.json"), JSON.stringify({ package: pkg, release, vmlinuz: "vmlinuz", modules }, null, 2));
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Module name as the kernel spells it: `-` and `_` are the same. */
const modName = (s: string) => s.replace(/-/g, "_");

/** The `depends=` field of a module's .modinfo section (NUL-separated key=value strings). */
export function moduleDepends(ko: Buffer): string[] {
  const key = Buffer.from("\0depends=");
  const at = ko.indexOf(key);
  if (at < 0) return [];
  const end = ko.indexOf(0, at + key.length);
  const value = ko.subarray(at + key.length, end < 0 ? undefined : end).toString("latin1");
  return value.split(",").filter(Boolean).map(modName);
}

/**
 * The module files for `roots` and everything they depend on, dependencies
 * first; modules built into the kernel (modules.builtin) are left out.
 */
export function moduleClosure(modulesDir: string, roots: readonly string[]): string[] {
  const builtin = new Set(
    readFileSync(join(modulesDir, "modules.builtin"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((p) => modName(p.slice(p.lastIndexOf("/") + 1).replace(/\.ko$/, ""))),
  );
  const paths = new Map<string, string>();
  for (const rel of readFileSync(join(modulesDir, "modules.order"), "utf8").split("\n").filter(Boolean)) {
    paths.set(modName(rel.slice(rel.lastIndexOf("/") + 1).replace(/\.ko$/, "")), join(modulesDir, rel));
  }
  const ordered: string[] = [];
  const visiting = new Set<string>();
  const done = new Set<string>();
  const visit = (name: string): void => {
    if (done.has(name) || builtin.has(name)) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle at ${name}`);
    const path = paths.get(name);
    if (!path) throw new Error(`module ${name} is neither built in nor listed in ${modulesDir}/modules.order`);
    if (!path.endsWith(".ko")) throw new Error(`${path}: compressed modules are not supported (busybox insmod needs a plain .ko)`);
    visiting.add(name);
    for (const dep of moduleDepends(readFileSync(path))) visit(dep);
    visiting.delete(name);
    done.add(name);
    ordered.push(path);
  };
  for (const r of roots) visit(modName(r));
  return ordered;
}

// ---- cpio (newc) -------------------------------------------------------------

export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Buffer; mode?: number }
  | { kind: "char"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** A newc ("070701") archive, as the kernel's initramfs unpacker reads it. Pure. */
export function newcArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const push = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0], ino = 0) => {
    const nameBytes = Buffer.from(`${name}\0`, "utf8");
    const fields = [ino, mode, 0, 0, (mode & 0o170000) === S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`, "latin1");
    parts.push(header, nameBytes, Buffer.alloc(pad4(header.length + nameBytes.length)), data, Buffer.alloc(pad4(data.length)));
  };
  entries.forEach((e, i) => {
    const ino = i + 1;
    if (e.kind === "dir") push(e.path, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), [0, 0], ino);
    else if (e.kind === "file") push(e.path, S_IFREG | (e.mode ?? 0o644), e.data, [0, 0], ino);
    else push(e.path, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor], ino);
  });
  push("TRAILER!!!", 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

// ---- the initramfs -------------------------------------------------------------

/** Throws unless `path` is a statically linked ELF (no PT_INTERP): the initramfs has no libc. */
export function assertStaticElf(path: string): void {
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) throw new Error(`${path} is not a 64-bit ELF file`);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3) {
      throw new Error(`${path} is dynamically linked: install busybox-static (it replaces the dynamic busybox package)`);
    }
  }
}

/** /init. `tag` names the profile whose initramfs this is, so a test can tell which one a machine booted. */
export function initScript(tag: string, moduleNames: readonly string[]): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(tag)) throw new Error(`initramfs tag must be a plain word: ${tag}`);
  return `#!/bin/busybox sh
# talos-netboot test initramfs "${tag}": fetch talos.config, report it on ttyS0, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The markers must reach the serial port whatever console= the profile sets.
exec >/dev/ttyS0 2>&1
echo "TNB-BOOTED tag=${tag}"
# Every step below is bounded by this watchdog (busybox 1.35's wget -T crashes, so it is not used).
( sleep 60; echo "TNB-ERROR watchdog"; poweroff -f ) &
for m in ${moduleNames.join(" ")}; do insmod "/lib/modules/$m.ko" || echo "TNB-ERROR insmod $m"; done
ip link set lo up
iface=""
n=0
while [ -z "$iface" ] && [ $n -lt 100 ]; do
  for d in /sys/class/net/*; do
    name=\${d##*/}
    [ "$name" != lo ] && [ -z "$iface" ] && iface=$name
  done
  [ -z "$iface" ] && sleep 0.1
  n=$((n + 1))
done
[ -n "$iface" ] || echo "TNB-ERROR no network interface"
ip link set "$iface" up
echo "TNB-CMDLINE $(cat /proc/cmdline)"
udhcpc -i "$iface" -n -q -t 10 -T 2 -s /bin/tnb-udhcpc || echo "TNB-ERROR dhcp"
url=$(sed -n 's/.*talos\\.config=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
if [ -z "$url" ]; then
  echo "TNB-ERROR no talos.config on the command line"
elif wget -q -O /tmp/config "$url"; then
  echo "TNB-CONFIG $(base64 -w 0 /tmp/config)"
else
  echo "TNB-ERROR wget $url"
fi
echo "TNB-POWEROFF"
poweroff -f
`;
}

const UDHCPC_SCRIPT = `#!/bin/sh
# udhcpc calls this with the lease in the environment.
case "$1" in
  bound|renew) ip addr add "$ip/\${mask:-24}" dev "$interface" && echo "TNB-ADDRESS $ip" ;;
esac
`;

/** A gzip-compressed initramfs: static busybox, the NIC modules, /init. */
export function buildTestInitramfs(opts: { kernel: DebianKernel; tag: string; busybox?: string }): Buffer {
  const busybox = opts.busybox ?? "/bin/busybox";
  assertStaticElf(busybox);
  const modules = opts.kernel.modules.map((path) => ({ name: path.slice(path.lastIndexOf("/") + 1).replace(/\.ko$/, ""), path }));
  const entries: CpioEntry[] = [
    ...["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "etc"].map((path): CpioEntry => ({ kind: "dir", path })),
    { kind: "char", path: "dev/console", major: 5, minor: 1 },
    { kind: "file", path: "bin/busybox", data: readFileSync(busybox), mode: 0o755 },
    { kind: "file", path: "bin/tnb-udhcpc", data: Buffer.from(UDHCPC_SCRIPT), mode: 0o755 },
    { kind: "file", path: "etc/tnb-tag", data: Buffer.from(`${opts.tag}\n`) },
    ...modules.map((m): CpioEntry => ({ kind: "file", path: `lib/modules/${m.name}.ko`, data: readFileSync(m.path) })),
    { kind: "file", path: "init", data: Buffer.from(initScript(opts.tag, modules.map((m) => m.name))), mode: 0o755 },
  ];
  return gzipSync(newcArchive(entries), { level: 1 });
}

export interface BootProfileFiles {
  tag: string;
  kernel: string;
  initrd: string;
  config: string;
  /** The config's exact bytes, with a random nonce: proof that the guest fetched this very file. */
  configBytes: Buffer;
}

/**
 * Kernel, initramfs and config for one test profile under `dir`. With
 * `kernelPadding`, the kernel is a copy with that many random bytes appended,
 * so two profiles' kernels differ in size and content (bzImage loaders and
 * the EFI stub ignore bytes past the image's own payload).
 */
export function writeBootProfile(dir: string, kernel: DebianKernel, tag: string, opts: { kernelPadding?: number } = {}): BootProfileFiles {
  const base = join(dir, tag);
  mkdirSync(base, { recursive: true });
  let kernelPath = kernel.vmlinuz;
  if (opts.kernelPadding) {
    kernelPath = join(base, "vmlinuz");
    writeFileSync(kernelPath, Buffer.concat([readFileSync(kernel.vmlinuz), randomBytes(opts.kernelPadding)]));
  }
  const initrd = join(base, "initramfs.gz");
  writeFileSync(initrd, buildTestInitramfs({ kernel, tag }));
  const configBytes = Buffer.from(`# talos-netboot firmware test, profile ${tag}\nversion: v1alpha1\nnonce: ${randomBytes(12).toString("hex")}\n`);
  const config = join(base, "config.yaml");
  writeFileSync(config, configBytes, { mode: 0o600 });
  return { tag, kernel: kernelPath, initrd, config, configBytes };
}

// ---- reading the serial console ------------------------------------------------

export interface SerialReport {
  /** Tag of the initramfs that ran. */
  booted?: string;
  cmdline?: string;
  address?: string;
  /** The config as fetched by the guest. */
  config?: Buffer;
  errors: string[];
  poweredOff: boolean;
}

/** The marker lines of a serial log (kernel messages may share the port: markers are matched anywhere in a line). */
export function parseSerial(text: string): SerialReport {
  const report: SerialReport = { errors: [], poweredOff: false };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\r/g, "");
    let m: RegExpExecArray | null;
    if ((m = /TNB-BOOTED tag=(\S+)/.exec(line))) report.booted = m[1];
    else if ((m = /TNB-CMDLINE (.*)$/.exec(line))) report.cmdline = m[1]!.trim();
    else if ((m = /TNB-ADDRESS (\S+)/.exec(line))) report.address = m[1];
    else if ((m = /TNB-CONFIG ([A-Za-z0-9+/=]*)/.exec(line))) report.config = Buffer.from(m[1]!, "base64");
    else if ((m = /TNB-ERROR (.*)$/.exec(line))) report.errors.push(m[1]!.trim());
    else if (/TNB-POWEROFF/.test(line)) report.poweredOff = true;
  }
  return report;
}
