/** A generator input that cannot produce a valid config; `path` names the option. */
export class GenerateError extends Error {
  override name = "GenerateError";
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(path ? `${path}: ${message}` : message);
  }
}
