// Types for scripts/build.mjs (plain JS so it runs before any build), for the TypeScript that imports it.
export declare const ROOT: string;
export declare function staleReason(entry?: string): string | null;
export declare function build(options?: { full?: boolean; quiet?: boolean }): { ok: boolean; output: string };
export declare function ensureBuilt(options?: { entry?: string; allowTypeErrors?: boolean; log?: (message: string) => void }): boolean;
