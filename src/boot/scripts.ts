import type { BootPlan } from "./plan.js";
import { render, type Templates } from "./templates.js";

/** How often iPXE tries each download before giving up on the network boot. */
export const DOWNLOAD_ATTEMPTS = 3;

/** iPXE takes the kernel command line as words after the URL; `initrd=` names let the UEFI stub find them. */
function ipxeKernelArgs(plan: Extract<BootPlan, { mode: "install" }>): string {
  return [...plan.initrds.map((i) => `initrd=${i.name}`), plan.cmdline].filter(Boolean).join(" ");
}

function retried(command: string): string {
  return `${Array.from({ length: DOWNLOAD_ATTEMPTS }, () => command).join(" || ")} || goto failed`;
}

/**
 * The iPXE script for a plan, or null when the plan's local-boot method is
 * `http-404` (the script URL answers 404 and iPXE moves on by itself).
 */
export function renderIpxeScript(plan: BootPlan, t: Templates): string | null {
  if (plan.mode === "local") {
    if (plan.method === "http-404") return null;
    const tpl = plan.method === "sanboot" ? t.ipxeLocalSanboot : t.ipxeLocalExit;
    return render(tpl, { hostname: plan.hostname, mac: plan.mac });
  }
  const args = ipxeKernelArgs(plan);
  const lines = [retried(`kernel ${plan.kernelUrl}${args ? ` ${args}` : ""}`), ...plan.initrds.map((i) => retried(`initrd ${i.url}`))];
  return render(t.ipxeInstall, {
    hostname: plan.hostname,
    mac: plan.mac,
    profile: plan.profile,
    attempts: DOWNLOAD_ATTEMPTS,
    downloads: lines.join("\n"),
  });
}

/** GRUB reads http URLs as `(http,host:port)/path`. */
export function grubPath(url: string): string {
  const u = new URL(url);
  return `(http,${u.host})${u.pathname}${u.search}`;
}

export function renderGrubConfig(plan: BootPlan, t: Templates): string {
  if (plan.mode === "local") return render(t.grubLocal, { hostname: plan.hostname, mac: plan.mac });
  return render(t.grubInstall, {
    hostname: plan.hostname,
    mac: plan.mac,
    profile: plan.profile,
    kernel: grubPath(plan.kernelUrl),
    cmdline: plan.cmdline,
    initrdCommand: plan.initrds.length ? `initrd ${plan.initrds.map((i) => grubPath(i.url)).join(" ")}` : "# (the profile has no initrd)",
  });
}
