/**
 * A conservative check that a regular expression from the config cannot backtrack catastrophically on the
 * values it is run against (header values up to server.maxHeaderSize, a query value up to server.maxUrlLength).
 * JavaScript's engine backtracks; no linear-time engine installs from npm without a compiler on every platform, so
 * patterns whose shape allows exponential or high-polynomial backtracking are refused at validation instead.
 *
 * Route regexes are run anchored (`^(?:…)$`, a whole-value match as in Envoy and HTTPRoute) with the `s` flag
 * (`.` matches every character). Refused (docs/routing.md lists them with examples):
 * - nested repetition: a repeated group (`*`, `+`, `{n,}`, `{n,m}` with m > 1) whose body itself repeats a variable
 *   number of times or can match the empty string: `(a+)+`, `(a*)*`, `(a?){2,}`, `(?:\d{1,3})+`
 * - a repeated alternation whose branches can begin with the same character or be empty: `(a|ab)*`, `(\w|_)+`
 * - two unbounded repetitions that can match the same characters with nothing between them that only the second
 *   could take: `\d+\d+`, `.*a.*b`, `\w*_\w*x` (a final `.*` or `[\s\S]*` is allowed: it always reaches the end)
 * - backreferences and lookaround (their cost cannot be bounded by shape), and patterns over 1,000 characters.
 * What passes is at most quadratic in the value's length only through one unbounded repetition scanned once per
 * position of another, which the third rule excludes: in practice linear.
 */

export const MAX_PATTERN_LENGTH = 1000;

/** A set of characters: 128 ASCII bits plus one bit standing for every non-ASCII character (conservative). */
class CharSet {
  readonly bits = new Uint32Array(5);

  static of(...codes: number[]): CharSet {
    const s = new CharSet();
    for (const c of codes) s.add(c);
    return s;
  }

  static all(): CharSet {
    const s = new CharSet();
    s.bits.fill(0xffffffff);
    return s;
  }

  add(code: number): void {
    const i = code >= 128 ? 128 : code;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  addRange(from: number, to: number): void {
    for (let c = from; c <= Math.min(to, 128); c++) this.add(c);
    if (to >= 128) this.add(128);
  }

  union(o: CharSet): CharSet {
    const s = new CharSet();
    for (let i = 0; i < 5; i++) s.bits[i] = this.bits[i]! | o.bits[i]!;
    return s;
  }

  negate(): CharSet {
    const s = new CharSet();
    for (let i = 0; i < 5; i++) s.bits[i] = ~this.bits[i]!;
    // the non-ASCII bit stands for many characters: a negated class still matches some of them
    s.add(128);
    return s;
  }

  intersects(o: CharSet): boolean {
    for (let i = 0; i < 5; i++) if ((this.bits[i]! & o.bits[i]!) !== 0) return true;
    return false;
  }

  isAll(): boolean {
    return this.bits[0] === 0xffffffff && this.bits[1] === 0xffffffff && this.bits[2] === 0xffffffff && this.bits[3] === 0xffffffff;
  }
}

const DIGIT = (() => {
  const s = new CharSet();
  s.addRange(48, 57);
  return s;
})();
const WORD = (() => {
  const s = DIGIT.union(CharSet.of(95));
  s.addRange(65, 90);
  s.addRange(97, 122);
  return s;
})();
const SPACE = (() => {
  const s = CharSet.of(9, 10, 11, 12, 13, 32);
  s.add(128);
  return s;
})();

/** What the analyser knows of one piece of a pattern. */
interface Facts {
  /** characters it can consume anywhere */
  chars: CharSet;
  /** characters it can start with */
  first: CharSet;
  /** it can match the empty string */
  nullable: boolean;
  /** it contains a repetition whose count varies (`*`, `+`, `?`, `{n,m}` with n < m) */
  variable: boolean;
  /** it can consume an unbounded number of characters */
  unbounded: boolean;
}

type Node =
  | { t: 'chars'; set: CharSet }
  /** an assertion; `end` for `$` (the end of the value: the `m` flag is never set) */
  | { t: 'empty'; end?: boolean }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; alts: Node[] }
  | { t: 'rep'; body: Node; min: number; max: number };

class Refused extends Error {}

/** The reason `source` is refused, or null when it is safe to run. Syntax errors are reported as such. */
export function unsafeRegexReason(source: string): string | null {
  if (source.length > MAX_PATTERN_LENGTH) return `pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    new RegExp(source, 's');
  } catch (err) {
    return `invalid regular expression (${(err as Error).message})`;
  }
  try {
    const node = new Parser(source).parse();
    check(node, true);
    return null;
  } catch (err) {
    if (err instanceof Refused) return err.message;
    throw err;
  }
}

/** Compiles a route regex the way it is run: anchored to the whole value, `.` matching every character. */
export function compileRouteRegex(source: string): RegExp {
  return new RegExp(`^(?:${source})$`, 's');
}

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  parse(): Node {
    const n = this.alternation();
    if (this.i < this.s.length) throw new Refused(`unexpected ")" at offset ${this.i}`);
    return n;
  }

  private alternation(): Node {
    const alts = [this.sequence()];
    while (this.s[this.i] === '|') {
      this.i++;
      alts.push(this.sequence());
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') {
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return { t: 'seq', items };
  }

  private quantified(atom: Node): Node {
    const s = this.s;
    const c = s[this.i];
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(this.i));
      if (m === null) return atom; // a literal `{` (Annex B)
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      this.i += m[0].length - 1;
    } else return atom;
    this.i++;
    if (s[this.i] === '?') this.i++; // lazy: the same backtracking, in another order
    return this.quantified({ t: 'rep', body: atom, min, max });
  }

  private atom(): Node {
    const s = this.s;
    const c = s[this.i]!;
    this.i++;
    switch (c) {
      case '^':
        return { t: 'empty' };
      case '$':
        return { t: 'empty', end: true };
      case '.':
        return { t: 'chars', set: CharSet.all() };
      case '[':
        return { t: 'chars', set: this.charClass() };
      case '\\':
        return this.escape(false) ?? { t: 'empty' };
      case '(': {
        if (s[this.i] === '?') {
          const kind = s[this.i + 1];
          if (kind === ':') this.i += 2;
          else if (kind === '<' && s[this.i + 2] !== '=' && s[this.i + 2] !== '!') this.i = s.indexOf('>', this.i) + 1;
          else throw new Refused('lookahead and lookbehind are not supported');
        }
        const inner = this.alternation();
        this.i++; // ')' (the pattern compiled, so it is there)
        return inner;
      }
      default:
        return { t: 'chars', set: CharSet.of(c.charCodeAt(0)) };
    }
  }

  /** After a backslash; null for an assertion (\b, \B). */
  private escape(inClass: boolean): Node | null {
    const s = this.s;
    const c = s[this.i]!;
    this.i++;
    switch (c) {
      case 'd':
        return { t: 'chars', set: DIGIT };
      case 'D':
        return { t: 'chars', set: DIGIT.negate() };
      case 'w':
        return { t: 'chars', set: WORD };
      case 'W':
        return { t: 'chars', set: WORD.negate() };
      case 's':
        return { t: 'chars', set: SPACE };
      case 'S':
        return { t: 'chars', set: SPACE.negate() };
      case 'b':
        return inClass ? { t: 'chars', set: CharSet.of(8) } : null;
      case 'B':
        return null;
      case 'k':
        throw new Refused('backreferences are not supported');
      case 'n':
        return { t: 'chars', set: CharSet.of(10) };
      case 'r':
        return { t: 'chars', set: CharSet.of(13) };
      case 't':
        return { t: 'chars', set: CharSet.of(9) };
      case 'f':
        return { t: 'chars', set: CharSet.of(12) };
      case 'v':
        return { t: 'chars', set: CharSet.of(11) };
      case 'x': {
        const code = parseInt(s.slice(this.i, this.i + 2), 16);
        this.i += 2;
        return { t: 'chars', set: CharSet.of(code) };
      }
      case 'u': {
        const code = parseInt(s.slice(this.i, this.i + 4), 16);
        this.i += 4;
        return { t: 'chars', set: CharSet.of(code) };
      }
      case 'c':
        this.i++;
        return { t: 'chars', set: CharSet.all() };
      default:
        if (c >= '1' && c <= '9' && !inClass) throw new Refused('backreferences are not supported');
        if (c >= '0' && c <= '9') return { t: 'chars', set: CharSet.all() }; // an octal escape (Annex B): any char, to be safe
        return { t: 'chars', set: CharSet.of(c.charCodeAt(0)) };
    }
  }

  private charClass(): CharSet {
    const s = this.s;
    let negated = false;
    if (s[this.i] === '^') {
      negated = true;
      this.i++;
    }
    let set = new CharSet();
    while (this.i < s.length && s[this.i] !== ']') {
      const lo = this.classAtom();
      if (s[this.i] === '-' && s[this.i + 1] !== ']' && this.i + 1 < s.length && lo.code !== null) {
        this.i++;
        const hi = this.classAtom();
        if (hi.code !== null) {
          set.addRange(lo.code, hi.code);
          continue;
        }
        set = set.union(hi.set).union(CharSet.of(45));
      }
      set = set.union(lo.set);
    }
    this.i++; // ']'
    return negated ? set.negate() : set;
  }

  private classAtom(): { set: CharSet; code: number | null } {
    const s = this.s;
    if (s[this.i] === '\\') {
      this.i++;
      const before = this.i;
      const n = this.escape(true)!;
      const text = s.slice(before, this.i);
      const single = /^[dDwWsS]$/.test(text) ? null : firstCode(n);
      return { set: (n as { set: CharSet }).set, code: single };
    }
    const code = s.charCodeAt(this.i);
    this.i++;
    return { set: CharSet.of(code), code };
  }
}

function firstCode(n: Node): number | null {
  if (n.t !== 'chars') return null;
  const bits = n.set.bits;
  let found = -1;
  for (let i = 0; i < 129; i++) {
    if ((bits[i >>> 5]! & (1 << (i & 31))) !== 0) {
      if (found !== -1) return null;
      found = i;
    }
  }
  return found === -1 || found === 128 ? null : found;
}

/** Facts of `n`, refusing what the rules above refuse. `last`: n ends the whole pattern. */
function check(n: Node, last: boolean): Facts {
  switch (n.t) {
    case 'empty':
      return { chars: new CharSet(), first: new CharSet(), nullable: true, variable: false, unbounded: false };
    case 'chars':
      return { chars: n.set, first: n.set, nullable: false, variable: false, unbounded: false };
    case 'alt': {
      const facts = n.alts.map((a) => check(a, last));
      return {
        chars: facts.reduce((acc, f) => acc.union(f.chars), new CharSet()),
        first: facts.reduce((acc, f) => acc.union(f.first), new CharSet()),
        nullable: facts.some((f) => f.nullable),
        variable: facts.some((f) => f.variable),
        unbounded: facts.some((f) => f.unbounded),
      };
    }
    case 'rep': {
      const body = check(n.body, last && n.max <= 1);
      const repeats = n.max > 1;
      if (repeats && (body.variable || body.nullable)) {
        throw new Refused('nested repetition: a repeated group whose body can itself match a varying number of times or nothing (e.g. "(a+)+")');
      }
      if (repeats) overlappingAlternation(n.body);
      return {
        chars: body.chars,
        first: body.first,
        nullable: n.min === 0 || body.nullable,
        variable: n.min !== n.max || body.variable,
        unbounded: n.max === Infinity || body.unbounded,
      };
    }
    case 'seq': {
      const facts: Facts[] = n.items.map((item, i) => check(item, last && i === n.items.length - 1));
      adjacentUnbounded(n.items, facts, last);
      let first = new CharSet();
      let nullable = true;
      for (const f of facts) {
        if (!nullable) break;
        first = first.union(f.first);
        nullable = f.nullable;
      }
      return {
        chars: facts.reduce((acc, f) => acc.union(f.chars), new CharSet()),
        first,
        nullable,
        variable: facts.some((f) => f.variable),
        unbounded: facts.some((f) => f.unbounded),
      };
    }
  }
}

/** Under a repetition, branches of an alternation must start with different characters and not be empty. */
function overlappingAlternation(n: Node): void {
  if (n.t === 'alt') {
    const facts = n.alts.map((a) => check(a, false));
    for (let i = 0; i < facts.length; i++) {
      if (facts[i]!.nullable) throw new Refused('a repeated alternation with a branch that can match nothing (e.g. "(a|)*")');
      for (let j = i + 1; j < facts.length; j++) {
        if (facts[i]!.first.intersects(facts[j]!.first)) {
          throw new Refused('a repeated alternation whose branches can begin with the same character (e.g. "(a|ab)*")');
        }
      }
    }
    for (const a of n.alts) overlappingAlternation(a);
  } else if (n.t === 'seq') for (const item of n.items) overlappingAlternation(item);
  else if (n.t === 'rep') overlappingAlternation(n.body);
}

/**
 * Two unbounded repetitions A … B in one sequence, able to consume the same characters, with everything between
 * them also consumable by A: the split of the value between A and B is ambiguous, and every way is tried.
 */
function adjacentUnbounded(items: Node[], facts: Facts[], last: boolean): void {
  let open: CharSet | null = null; // chars of the latest unbounded item still able to take what follows
  for (let i = 0; i < items.length; i++) {
    const f = facts[i]!;
    if (f.unbounded) {
      // a last `.*` takes the rest of the value at its first try: nothing after it can send it back
      const final = last && f.chars.isAll() && items.slice(i + 1).every((x) => x.t === 'empty' && x.end === true);
      if (open !== null && open.intersects(f.chars) && !final) {
        throw new Refused('two unbounded repetitions that can match the same characters in a row (e.g. "\\d+\\d+" or ".*a.*b")');
      }
      open = open === null ? f.chars : open.union(f.chars);
      continue;
    }
    // a mandatory piece that the open repetition could not take ends the ambiguity
    if (open !== null && !f.nullable && !open.intersects(f.chars)) open = null;
  }
}
