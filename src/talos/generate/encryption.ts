/**
 * STATE/EPHEMERAL encryption: `machine.systemDiskEncryption` up to 1.10,
 * `VolumeConfig` documents from 1.11. One LUKS2 key in slot 0.
 */
import { compact, docOf, type Context, type Doc } from "./context.js";
import type { VolumeEncryption } from "./options.js";

function keyMaterial(e: VolumeEncryption): Doc {
  switch (e.keyType) {
    case "nodeID":
      return { nodeID: {} };
    case "tpm":
      return { tpm: {} };
    case "static":
      return { static: { passphrase: e.passphrase } };
    case "kms":
      return { kms: { endpoint: e.kmsEndpoint } };
  }
}

/** Legacy field order (v1alpha1.EncryptionKey): static, nodeID, kms, slot, tpm. */
function legacyKey(e: VolumeEncryption): Doc {
  const m = keyMaterial(e);
  return compact({ static: m.static, nodeID: m.nodeID, kms: m.kms, slot: 0, tpm: m.tpm });
}

/** block.EncryptionKey field order: slot first. */
function volumeKey(e: VolumeEncryption): Doc {
  return { slot: 0, ...keyMaterial(e) };
}

/** `machine.systemDiskEncryption`, or undefined when none is asked for or the contract keeps it elsewhere. */
export function legacySystemDiskEncryption(ctx: Context): Doc | undefined {
  const enc = ctx.options.diskEncryption;
  if (ctx.layout.diskEncryption !== "machine.systemDiskEncryption" || enc === undefined) return undefined;
  const spec = (e: VolumeEncryption | undefined) => (e ? { provider: "luks2", keys: [legacyKey(e)] } : undefined);
  const out = compact({ state: spec(enc.state), ephemeral: spec(enc.ephemeral) });
  return Object.keys(out).length > 0 ? out : undefined;
}

export function volumeEncryptionSpec(e: VolumeEncryption): Doc {
  return { provider: "luks2", keys: [volumeKey(e)] };
}

/**
 * The system VolumeConfig documents: STATE when it is encrypted, EPHEMERAL
 * when it is encrypted or the contract writes it anyway (1.14's secure
 * mount), its encryption merged into that one document.
 */
export function systemVolumeDocuments(ctx: Context): Doc[] {
  const enc = ctx.layout.diskEncryption === "VolumeConfig" ? ctx.options.diskEncryption : undefined;
  const docs: Doc[] = [];
  if (enc?.state) docs.push(docOf("VolumeConfig", { name: "STATE", encryption: volumeEncryptionSpec(enc.state) }));
  if (enc?.ephemeral || ctx.layout.defaultVolumeDocuments) {
    docs.push(
      docOf(
        "VolumeConfig",
        compact({
          name: "EPHEMERAL",
          encryption: enc?.ephemeral ? volumeEncryptionSpec(enc.ephemeral) : undefined,
          mount: ctx.layout.defaultVolumeDocuments ? { secure: true } : undefined,
        }),
      ),
    );
  }
  return docs;
}
