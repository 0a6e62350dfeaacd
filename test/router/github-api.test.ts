import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { routerVariants } from '../../variants/router/index.js';

interface RouteSpec {
  method: string;
  path: string;
}

const table: RouteSpec[] = JSON.parse(readFileSync(new URL('../../scenarios/routes/github-api.json', import.meta.url), 'utf8'));

/** A request path for a route: each param gets a value no static segment uses, the wildcard two segments. */
function instantiate(path: string, i: number): { path: string; params: Record<string, string> } {
  const params: Record<string, string> = {};
  let n = 0;
  const out = path.replace(/:(\w+)|\*/g, (_m, name: string | undefined) => {
    const value = name === undefined ? 'x/y%20z' : `v${i}_${n++}`;
    params[name ?? '*'] = name === undefined ? 'x/y z' : value;
    return value;
  });
  return { path: out, params };
}

describe('github-api route table', () => {
  it('is a sizeable mix of static, param and wildcard routes', () => {
    expect(table.length).toBeGreaterThanOrEqual(200);
    expect(table.filter((r) => !r.path.includes(':') && !r.path.includes('*')).length).toBeGreaterThan(20);
    expect(table.filter((r) => r.path.includes('*')).length).toBeGreaterThan(3);
  });

  for (const [name, createRouter] of Object.entries(routerVariants)) {
    it(`${name}: every route is found from an instantiated path`, () => {
      const router = createRouter<number>();
      table.forEach((r, i) => router.add(r.method, r.path, i));
      table.forEach((r, i) => {
        const { path, params } = instantiate(r.path, i);
        expect(router.find(r.method, path), `${r.method} ${path}`).toEqual({ value: i, params });
      });
      expect(router.find('GET', '/repos/a/b/nope/x/y/z')).toBeNull();
      expect(router.find('GET', '/nope')).toBeNull();
    });
  }
});
