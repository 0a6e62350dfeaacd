import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { locateJsonError } from '../../core/config/json-error.js';

describe('locateJsonError: line and column of a JSON syntax error', () => {
  it.each([
    ['{\n  "a": 1,\n  }', 3, 3, 'no comma before "}"'],
    ['{\n  "a": [1, 2,]\n}', 2, 14, 'no comma before "]"'],
    ['{\n  "a": tru }', 2, 11, 'expected "true"'],
    ['{"a": ', 1, 7, 'found end of file'],
    ['{\n  "a": "x\ny"\n}', 2, 10, 'line break inside a string'],
    ['{\n  a: 1\n}', 2, 3, 'double-quoted property name'],
    ['{"a": 1}\n{"b": 2}', 2, 1, 'end of file after the document'],
    ['{"a": 01}', 1, 8, '"," or "}"'],
    ["{'a': 1}", 1, 2, 'double-quoted property name'],
    ['{"a": "\\x"}', 1, 9, 'an escape'],
    ['{"a": "\\u12g4"}', 1, 12, '4 hex digits'],
    ['{"a" 1}', 1, 6, 'expected ":"'],
    ['', 1, 1, 'expected a value, found end of file'],
    ['{\r\n  "a": 1,\r\n  }', 3, 3, 'no comma'],
  ])('%j → line %i, column %i', (text, line, column, reason) => {
    expect(() => JSON.parse(text)).toThrow();
    const at = locateJsonError(text);
    expect(at).toMatchObject({ line, column });
    expect(at!.reason).toContain(reason);
  });

  it('accepts what JSON.parse accepts', () => {
    for (const text of [
      readFileSync('gateway.schema.json', 'utf8'),
      readFileSync('package.json', 'utf8'),
      '[]',
      ' {} ',
      '-0.5e+10',
      '"\\u00e9\\n"',
      '[true,false,null,{"a":[{}]}]',
      '1E5',
      '{"":""}',
    ]) {
      expect(() => JSON.parse(text)).not.toThrow();
      expect(locateJsonError(text)).toBeNull();
    }
  });

  it('finds an error wherever JSON.parse finds one (every truncation and one-character deletion of a real file)', () => {
    const text = JSON.stringify(
      {
        server: { port: 8080, tls: { cert: 'a.pem' } },
        routes: [{ path: '/x', methods: ['GET'], response: { body: 'é\n"' } }],
        n: -1.5e3,
        t: true,
        f: false,
        z: null,
      },
      null,
      2,
    );
    const cases: string[] = [];
    for (let k = 0; k < text.length; k++) cases.push(text.slice(0, k), text.slice(0, k) + text.slice(k + 1));
    for (const t of cases) {
      let parses = true;
      try {
        JSON.parse(t);
      } catch {
        parses = false;
      }
      expect(locateJsonError(t) === null, JSON.stringify(t)).toBe(parses);
    }
  });
});
