/**
 * The QEMU command line for one local VM. Pure.
 *
 * - q35 with OVMF (code read-only, a per-VM copy of the vars) or SeaBIOS;
 * - one virtio NIC on a tap we created, with our MAC; a virtio-blk disk
 *   (qcow2); `bootindex` orders them — network first for the install, disk
 *   first after — and a running VM takes a new order at its next reset;
 * - a virtio RNG (UEFI PXE wants entropy), the serial console appended to a
 *   per-VM log, QMP on a unix socket for the ACPI power button;
 * - `-daemonize -pidfile`: QEMU outlives the daemon, which re-adopts it by
 *   its PID file after a restart.
 */
import type { BootOrder, Firmware } from "../types.js";

export interface QemuVmFiles {
  dir: string;
  disk: string;
  vars: string;
  serialLog: string;
  firmwareLog: string;
  pidFile: string;
  qmpSocket: string;
}

export interface QemuArgsInput {
  name: string;
  mac: string;
  tap: string;
  cores: number;
  memoryMB: number;
  firmware: Firmware;
  boot: BootOrder;
  accel: "kvm" | "tcg";
  ovmfCode: string;
  files: QemuVmFiles;
}

export function qemuArgs(v: QemuArgsInput): string[] {
  const nicIndex = v.boot === "network" ? 1 : 2;
  const diskIndex = v.boot === "network" ? 2 : 1;
  const args = [
    "-name", `guest=${v.name},debug-threads=off`,
    "-machine", `q35,accel=${v.accel}`,
    "-cpu", v.accel === "kvm" ? "host" : "max",
    "-smp", String(v.cores),
    "-m", String(v.memoryMB),
    "-nodefaults",
    "-no-user-config",
    "-display", "none",
  ];
  if (v.firmware === "uefi") {
    args.push("-drive", `if=pflash,format=raw,readonly=on,file=${v.ovmfCode}`, "-drive", `if=pflash,format=raw,file=${v.files.vars}`);
  } else {
    // SeaBIOS writes its messages to the debug port, not the serial line.
    args.push("-chardev", `file,id=fwlog,path=${v.files.firmwareLog},append=on`, "-device", "isa-debugcon,iobase=0x402,chardev=fwlog");
  }
  args.push(
    "-chardev", `file,id=ser0,path=${v.files.serialLog},append=on`,
    "-serial", "chardev:ser0",
    "-netdev", `tap,id=net0,ifname=${v.tap},script=no,downscript=no`,
    "-device", `virtio-net-pci,netdev=net0,id=nic0,mac=${v.mac},bootindex=${nicIndex}`,
    "-drive", `file=${v.files.disk},if=none,id=drive0,format=qcow2,discard=unmap`,
    "-device", `virtio-blk-pci,drive=drive0,id=disk0,bootindex=${diskIndex}`,
    "-device", "virtio-rng-pci",
    "-qmp", `unix:${v.files.qmpSocket},server=on,wait=off`,
    "-pidfile", v.files.pidFile,
    "-daemonize",
  );
  return args;
}

/** The tap for a MAC: `tn` + the last four octets, within Linux's 15 characters. */
export function tapName(mac: string): string {
  return `tn${mac.split(":").slice(2).join("")}`;
}
