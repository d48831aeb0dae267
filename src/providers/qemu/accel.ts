/**
 * KVM or TCG, decided by trying. On some hosts /dev/kvm exists and opens but
 * guests die early ("KVM internal error" as soon as OVMF runs — seen on the
 * nested-virtualisation machines this project is tested on), so its presence
 * proves nothing: we boot OVMF under KVM for a few seconds and look for its
 * boot manager on the serial line.
 */
import { accessSync, constants, copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

export interface AccelProbeOptions {
  binary: string;
  ovmfCode: string;
  ovmfVars: string;
  timeoutMs?: number;
}

export type Accel = "kvm" | "tcg";

export async function probeKvm(opts: AccelProbeOptions): Promise<{ accel: Accel; why: string }> {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return { accel: "tcg", why: "/dev/kvm is missing or not accessible" };
  }
  const dir = mkdtempSync(join(tmpdir(), "tn-kvm-probe-"));
  const serial = join(dir, "serial.log");
  const vars = join(dir, "vars.fd");
  try {
    copyFileSync(opts.ovmfVars, vars);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { accel: "tcg", why: `cannot read OVMF vars to probe KVM: ${(err as Error).message}` };
  }
  const child = spawn(
    opts.binary,
    ["-machine", "q35,accel=kvm", "-m", "128", "-nodefaults", "-no-user-config", "-display", "none", "-drive", `if=pflash,format=raw,readonly=on,file=${opts.ovmfCode}`, "-drive", `if=pflash,format=raw,file=${vars}`, "-chardev", `file,id=s0,path=${serial}`, "-serial", "chardev:s0", "-no-reboot"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  let exited = false;
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  child.on("exit", () => (exited = true));
  child.on("error", (e) => {
    exited = true;
    stderr += e.message;
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let result: { accel: Accel; why: string } = { accel: "tcg", why: "OVMF under KVM showed nothing in time" };
  try {
    while (Date.now() < deadline) {
      let out = "";
      try {
        out = readFileSync(serial, "utf8");
      } catch {
        // not written yet
      }
      if (out.includes("BdsDxe")) {
        result = { accel: "kvm", why: "OVMF reached its boot manager under KVM" };
        break;
      }
      if (/KVM internal error|emulation failure|failed to initialize kvm|Could not access KVM/i.test(stderr) || exited) {
        result = { accel: "tcg", why: `KVM fails here: ${stderr.split("\n").find((l) => /kvm|error/i.test(l)) ?? "QEMU exited"}` };
        break;
      }
      await sleep(100);
    }
  } finally {
    if (!exited && child.pid !== undefined) {
      child.kill("SIGKILL");
      for (let i = 0; i < 50 && !exited; i++) await sleep(20);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}
