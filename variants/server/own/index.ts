import type { ServerEngineFactory } from '../../../core/contracts/server.js';
import { OwnEngine } from './engine.js';

/** The own HTTP/1.1 engine (`variants.server: "own"`): see engine.ts and README.md. */
export const createServerEngine: ServerEngineFactory = (config, handlers) => new OwnEngine(config, handlers);
