/**
 * The `secrets.yaml` file format of `talosctl gen secrets`: Talos's
 * secrets.Bundle marshalled by go-yaml — lower-cased Go field names, four-space
 * indentation, fields in struct order, PEM blocks as standard base64 of their
 * bytes, `aescbcencryptionsecret`/`secretboxencryptionsecret` only when set.
 * Our writer produces the same bytes talosctl would for the same bundle.
 */
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { SecretsError, assertValidSecrets, type SecretsBundle } from "./secrets.js";

// ---------------------------------------------------------------- reading

const isAbsent = (input: unknown) => input === undefined || input === "" || input === "null" || input === "~";

const str = z.string({ error: (iss) => (isAbsent(iss.input) ? "required" : "expected a string") }).min(1, { error: "required" });
const optionalStr = z.string({ error: "expected a string" }).optional();
function mapping<T extends z.ZodRawShape>(shape: T) {
  return z.object(shape, { error: (iss) => (isAbsent(iss.input) ? "required" : "expected a mapping") });
}
const pair = mapping({ crt: str, key: str });

/** The file's shape (Go's field names); unknown keys are ignored, as talosctl does. */
const fileSchema = mapping({
  cluster: mapping({ id: str, secret: str }),
  secrets: mapping({
    bootstraptoken: str,
    aescbcencryptionsecret: optionalStr,
    secretboxencryptionsecret: optionalStr,
  }),
  trustdinfo: mapping({ token: str }),
  certs: mapping({
    etcd: pair,
    k8s: pair,
    k8saggregator: pair,
    k8sserviceaccount: mapping({ key: str }),
    os: pair,
  }),
});

/** Go's base64.StdEncoding.DecodeString: padded standard alphabet; it skips CR and LF. */
function decodeStdBase64(field: string, value: string): string {
  const text = value.replace(/[\r\n]/g, "");
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new SecretsError(field, `${field}: not standard base64`);
  }
  // PEM is ASCII; latin1 keeps any other byte as it was, so re-encoding is lossless.
  return Buffer.from(text, "base64").toString("latin1");
}

/**
 * Parses a secrets.yaml (talosctl's or ours). Throws a SecretsError naming
 * the field for a missing field, a non-base64 PEM field, and — unless
 * `validate: false` — for anything validateSecrets finds (bad PEM, a key not
 * matching its certificate, a bad token…).
 */
export function readSecretsYaml(text: string, opts: { validate?: boolean; now?: Date } = {}): SecretsBundle {
  // failsafe: every scalar is a string, as Go decodes into string fields
  // (an unquoted all-digit token stays text instead of becoming a number).
  const docs = parseAllDocuments(text, { schema: "failsafe" });
  if (!Array.isArray(docs)) throw new SecretsError("(file)", "secrets.yaml: empty file");
  if (docs.length !== 1) throw new SecretsError("(file)", `secrets.yaml: expected one YAML document, found ${docs.length}`);
  const doc = docs[0]!;
  const yamlError = doc.errors[0];
  if (yamlError) throw new SecretsError("(file)", `secrets.yaml: not valid YAML: ${yamlError.message.split("\n")[0]}`);

  const parsed = fileSchema.safeParse(doc.toJS() ?? undefined);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(file)"}: ${i.message}`);
    const field = parsed.error.issues[0]?.path.join(".") || "(file)";
    throw new SecretsError(field, `invalid secrets bundle: ${problems.join("; ")}`, problems);
  }
  const f = parsed.data;
  const pem = (field: string, value: string) => decodeStdBase64(field, value);
  const bundle: SecretsBundle = {
    cluster: { id: f.cluster.id, secret: f.cluster.secret },
    secrets: {
      bootstrapToken: f.secrets.bootstraptoken,
      ...(f.secrets.aescbcencryptionsecret ? { aescbcEncryptionSecret: f.secrets.aescbcencryptionsecret } : {}),
      ...(f.secrets.secretboxencryptionsecret ? { secretboxEncryptionSecret: f.secrets.secretboxencryptionsecret } : {}),
    },
    trustdInfo: { token: f.trustdinfo.token },
    certs: {
      etcd: { crt: pem("certs.etcd.crt", f.certs.etcd.crt), key: pem("certs.etcd.key", f.certs.etcd.key) },
      k8s: { crt: pem("certs.k8s.crt", f.certs.k8s.crt), key: pem("certs.k8s.key", f.certs.k8s.key) },
      k8sAggregator: {
        crt: pem("certs.k8saggregator.crt", f.certs.k8saggregator.crt),
        key: pem("certs.k8saggregator.key", f.certs.k8saggregator.key),
      },
      k8sServiceAccount: { key: pem("certs.k8sserviceaccount.key", f.certs.k8sserviceaccount.key) },
      os: { crt: pem("certs.os.crt", f.certs.os.crt), key: pem("certs.os.key", f.certs.os.key) },
    },
  };
  if (opts.validate !== false) assertValidSecrets(bundle, opts.now);
  return bundle;
}

// ---------------------------------------------------------------- writing

// What go-yaml's resolver would read back as something other than a string
// (YAML 1.2 core ints/floats, plus the 1.1 booleans and base-60 numbers it
// still quotes): such strings are written double-quoted, as go-yaml does.
const NON_STRING = [
  /^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$/,
  /^[-+]?0[xX][0-9a-fA-F_]+$/,
  /^[-+]?0[oO]?[0-7_]+$/,
  /^[-+]?0[bB][01_]+$/,
  /^[-+]?\.(inf|Inf|INF)$/,
  /^\.(nan|NaN|NAN)$/,
  /^(true|True|TRUE|false|False|FALSE|null|Null|NULL|~)$/,
  /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/,
  /^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$/,
];

/**
 * One YAML scalar as go-yaml (v3/v4, and v2 for the kubeconfig) writes a Go
 * string: double-quoted when it would read back as another type, plain when
 * the emitter allows a plain scalar, single-quoted otherwise.
 */
export function goYamlScalar(value: string): string {
  if (value === "" || NON_STRING.some((re) => re.test(value))) return JSON.stringify(value);
  // Only printable ASCII is analysed; anything else gets the always-safe form.
  if (!/^[\x20-\x7e]*$/.test(value)) return JSON.stringify(value);
  const first = value[0] ?? "";
  const followedBySpace = (i: number) => i + 1 >= value.length || value[i + 1] === " ";
  let plain =
    !"#,[]{}&*!|>'\"%@`".includes(first) &&
    !((first === "-" || first === "?" || first === ":") && followedBySpace(0)) &&
    !value.startsWith("---") &&
    !value.startsWith("...") &&
    first !== " " &&
    !value.endsWith(" ");
  for (let i = 0; plain && i < value.length; i++) {
    if (value[i] === ":" && followedBySpace(i)) plain = false;
    if (value[i] === "#" && value[i - 1] === " ") plain = false;
  }
  return plain ? value : `'${value.replace(/'/g, "''")}'`;
}

/** Byte-compatible with `talosctl gen secrets` output for the same bundle. */
export function writeSecretsYaml(b: SecretsBundle): string {
  const s = goYamlScalar;
  const b64 = (pem: string) => s(Buffer.from(pem, "latin1").toString("base64"));
  const pair = (name: string, p: { crt: string; key: string }) =>
    `    ${name}:\n        crt: ${b64(p.crt)}\n        key: ${b64(p.key)}\n`;
  return (
    "cluster:\n" +
    `    id: ${s(b.cluster.id)}\n` +
    `    secret: ${s(b.cluster.secret)}\n` +
    "secrets:\n" +
    `    bootstraptoken: ${s(b.secrets.bootstrapToken)}\n` +
    (b.secrets.aescbcEncryptionSecret ? `    aescbcencryptionsecret: ${s(b.secrets.aescbcEncryptionSecret)}\n` : "") +
    (b.secrets.secretboxEncryptionSecret ? `    secretboxencryptionsecret: ${s(b.secrets.secretboxEncryptionSecret)}\n` : "") +
    "trustdinfo:\n" +
    `    token: ${s(b.trustdInfo.token)}\n` +
    "certs:\n" +
    pair("etcd", b.certs.etcd) +
    pair("k8s", b.certs.k8s) +
    pair("k8saggregator", b.certs.k8sAggregator) +
    `    k8sserviceaccount:\n        key: ${b64(b.certs.k8sServiceAccount.key)}\n` +
    pair("os", b.certs.os)
  );
}
