import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The boot script templates, loaded once (and again on SIGHUP). */
export const TEMPLATE_FILES = {
  ipxeInstall: "ipxe/install.ipxe",
  ipxeLocalExit: "ipxe/local-exit.ipxe",
  ipxeLocalSanboot: "ipxe/local-sanboot.ipxe",
  ipxeChain: "ipxe/chain.ipxe",
  grubInstall: "grub/install.cfg",
  grubLocal: "grub/local.cfg",
  grubBootstrap: "grub/bootstrap.cfg",
} as const;

export type TemplateName = keyof typeof TEMPLATE_FILES;
export type Templates = Record<TemplateName, string>;

export function loadTemplates(dir: string): Templates {
  const out = {} as Templates;
  for (const [name, file] of Object.entries(TEMPLATE_FILES) as Array<[TemplateName, string]>) {
    out[name] = readFileSync(join(dir, file), "utf8");
  }
  return out;
}

/**
 * Replaces `{{name}}` placeholders. A placeholder without a value is an error,
 * not an empty string: a script with a hole in it would boot the wrong thing.
 * `${...}` is left alone — it belongs to iPXE and GRUB.
 */
export function render(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`boot template placeholder {{${key}}} has no value`);
    return String(v);
  });
}
