import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gatewaySchema } from '../core/config/schema.js';

/** Writes gateway.schema.json at the repository root, for editors (`"$schema": "./gateway.schema.json"`). */
const out = fileURLToPath(new URL('../../gateway.schema.json', import.meta.url));
writeFileSync(out, JSON.stringify(gatewaySchema, null, 2) + '\n');
