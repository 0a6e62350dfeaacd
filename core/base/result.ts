/**
 * The one success-or-problems shape of the code base: runtime build, plugin loading and init, config validation.
 * `errors` defaults to the list of human-readable problems, each prefixed with the JSON path it concerns
 * (`/routes/0/path: …`), so results from several steps concatenate into one report.
 */
export type Result<T, E = string[]> = { ok: true; value: T } | { ok: false; errors: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<E = string[]>(errors: E): { ok: false; errors: E } {
  return { ok: false, errors };
}
