import type { ServerEngineFactory } from '../../core/contracts/server.js';
import { createServerEngine as nodeHttp } from './node-http/index.js';
import { createServerEngine as own } from './own/index.js';

export const serverEngineVariants: Record<string, ServerEngineFactory> = { 'node-http': nodeHttp, own };

/**
 * The own engine is the default: it passes every suite the node:http engine passes and spends less CPU per request
 * (docs/performance.md); `node-http` stays selectable.
 */
export const DEFAULT_SERVER_ENGINE = 'own';
