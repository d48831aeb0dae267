/**
 * The traversal guard: a TFTP request name must be a plain relative name
 * before anything looks it up.
 */

export type NameCheck = { ok: true; name: string } | { ok: false; reason: string };

/** Longer than any boot file name; keeps log lines and map keys bounded. */
const MAX_NAME_LENGTH = 1024;

/**
 * Returns the normalized relative name, or why the name is refused.
 *
 * One leading `/` is stripped, not refused. GRUB asks for `/grub/...`-style
 * names and many PXE setups hand out `/pxelinux.0`; tftpd-hpa in its Debian
 * default (`--secure`, a chroot) and dnsmasq both read such a name relative to
 * the TFTP root. That is safe here because the result is only ever a key for
 * the resolver's map (or a name under a root checked by real path), never a
 * path opened as given: `/etc/passwd` becomes `etc/passwd`, which is not a
 * served file. Anything that still looks absolute after that (`//x`) or that
 * could be reinterpreted further down (`..`, `.`, `\`, `%2e`, control
 * characters) is refused outright.
 */
export function checkRequestName(raw: string): NameCheck {
  if (raw.length === 0) return refuse("empty name");
  if (raw.length > MAX_NAME_LENGTH) return refuse(`name longer than ${MAX_NAME_LENGTH} characters`);
  // NUL, C0/C1 controls and DEL: never in a boot file name, and they can
  // truncate or disguise the name in logs and C libraries.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(raw)) return refuse("control character in name");
  // Windows-style separators: a file server on a shared volume or a resolver
  // running elsewhere could treat `a\..\b` as a path.
  if (raw.includes("\\")) return refuse("backslash in name");
  // Percent-encoding is not part of TFTP; a layer that decodes it (HTTP
  // mirrors, URL-building resolvers) would turn `%2e%2e` into `..`. Any escape
  // is refused so double encoding (`%252e`) cannot slip through either.
  if (/%[0-9a-f]{2}/i.test(raw)) return refuse("percent-encoded characters in name");
  if (raw.includes("\ufffd")) return refuse("replacement character in name");

  const name = raw.startsWith("/") ? raw.slice(1) : raw;
  if (name.length === 0) return refuse("name is only a slash");
  if (name.startsWith("/")) return refuse("absolute name");
  for (const segment of name.split("/")) {
    if (segment === "") return refuse("empty path segment");
    if (segment === "." || segment === "..") return refuse(`"${segment}" path segment`);
  }
  return { ok: true, name };
}

function refuse(reason: string): NameCheck {
  return { ok: false, reason };
}
