import type { ServerEngineFactory } from '../../../core/contracts/server.js';
import { BufferPool } from '../../pool/buffer/index.js';
import { OwnEngine } from './engine.js';

/**
 * Response heads through pooled 4 KiB slabs (OwnEngineOptions.headPool) instead of latin1 strings. Issue 18 asks
 * for the seed's BufferPool to be kept only if it wins on CPU per request in the harness; measured with the build
 * dimension (README, "BufferPool"): `npm run scenario -- engines-direct --only server=own --build revert:<the
 * commit turning this on>,current`.
 */
const POOLED_HEADS = false;

/** The own HTTP/1.1 engine (`variants.server: "own"`): see engine.ts and README.md. */
export const createServerEngine: ServerEngineFactory = (config, handlers) =>
  new OwnEngine(config, handlers, POOLED_HEADS ? { headPool: new BufferPool({ size: 4096, capacity: 1024 }) } : {});
