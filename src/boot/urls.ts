import { macDashed, type Mac } from "./mac.js";

/**
 * Every URL the appliance hands out, in one place (the README documents
 * them). MACs appear dashed (`52-54-00-12-34-56`): no characters that iPXE,
 * GRUB or Talos would read as syntax.
 */
export class BootUrls {
  readonly base: string;
  constructor(address: string, port: number) {
    this.base = `http://${address}:${port}`;
  }
  /** iPXE script for one machine. */
  script(mac: Mac): string {
    return `${this.base}/boot/${macDashed(mac)}/boot.ipxe`;
  }
  /** Generic entry script: chains to the per-MAC script using iPXE's own ${mac}. */
  genericScript(): string {
    return `${this.base}/boot.ipxe`;
  }
  grubConfig(mac: Mac): string {
    return `${this.base}/boot/${macDashed(mac)}/grub.cfg`;
  }
  kernel(mac: Mac): string {
    return `${this.base}/boot/${macDashed(mac)}/kernel`;
  }
  /** The last path segment is the initrd's name in iPXE, which `initrd=` on the kernel line refers to. */
  initrd(mac: Mac, index: number): string {
    return `${this.base}/boot/${macDashed(mac)}/${initrdName(index)}`;
  }
  config(mac: Mac, token: string): string {
    return `${this.base}/boot/${macDashed(mac)}/config/${token}`;
  }
  /** Boot binaries over HTTP (UEFI HTTP Boot). */
  bootloader(name: string): string {
    return `${this.base}/bootloaders/${name}`;
  }
}

export function initrdName(index: number): string {
  return `initrd-${index}`;
}
